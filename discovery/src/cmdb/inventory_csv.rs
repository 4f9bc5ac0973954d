//! The CSV inventory export: a header `name,host,dc,role,ips,services,serving` (columns
//! found by name, any order, `name`, `host`, `dc` and `ips` required), then one container
//! per row. Lists are `;`-separated; `serving` is true/false/yes/no/1/0, empty meaning true.
//! There is no port column, so every service comes out without a port.

use std::collections::HashMap;

use graph_store::model::{ContainerRecord, Inventory};

use super::{all_services, check_containers, clean_list, decode, dedup_ips, name_text, optional_text, parse_ip, Place};
use crate::ExportError;

/// Parses a CSV inventory export; containers come out in file order.
pub fn parse_inventory_csv(file: &str, bytes: &[u8]) -> Result<Inventory, ExportError> {
    parse(file, decode(file, bytes)?)
}

const EXPECTED: &str = "name,host,dc,role,ips,services,serving";
const REQUIRED: [&str; 4] = ["name", "host", "dc", "ips"];

pub(super) fn parse(file: &str, text: &str) -> Result<Inventory, ExportError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut lines = Lines::new(text);
    let mut records = reader.records();
    let header = match records.next() {
        Some(header) => header.map_err(|err| csv_error(file, &mut lines, &err))?,
        None => return Err(ExportError::new(file, format!("no header line; expected {EXPECTED}"))),
    };
    let columns = Columns::new(file, lines.at(header.position()), &header)?;

    let mut located = Vec::new();
    for record in records {
        let record = record.map_err(|err| csv_error(file, &mut lines, &err))?;
        let line = lines.at(record.position());
        if record.len() != header.len() {
            return Err(ExportError::new(
                file,
                format!(
                    "{} column{}, but the header has {}",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    header.len()
                ),
            )
            .line(line));
        }
        located.push((Place::Line(line), columns.container(file, line, &record)?));
    }
    check_containers(file, &located)?;
    let containers: Vec<ContainerRecord> = located.into_iter().map(|(_, c)| c).collect();
    let services = all_services(Vec::new(), &containers);
    Ok(Inventory { containers, services })
}

/// Line numbers of records. The csv crate's own positions point before the blank lines it
/// skips, so a record's line is found from there: past any line ends, counting them.
#[derive(Debug)]
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text: text.as_bytes(), offset: 0, line: 1 }
    }

    /// The line where the record or error at `position` starts; positions must not go back.
    fn at(&mut self, position: Option<&csv::Position>) -> usize {
        let Some(position) = position else {
            return self.line;
        };
        let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX).clamp(self.offset, self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        self.line += self.text[self.offset..start].iter().filter(|&&b| b == b'\n').count();
        self.offset = start;
        self.line
    }
}

fn csv_error(file: &str, lines: &mut Lines<'_>, err: &csv::Error) -> ExportError {
    ExportError::new(file, format!("invalid CSV: {err}")).line(lines.at(err.position()))
}

/// Where each known column is in the rows.
#[derive(Debug)]
struct Columns {
    name: usize,
    host: usize,
    dc: usize,
    ips: usize,
    role: Option<usize>,
    services: Option<usize>,
    serving: Option<usize>,
}

impl Columns {
    fn new(file: &str, line: usize, header: &csv::StringRecord) -> Result<Columns, ExportError> {
        let mut at: HashMap<String, usize> = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if at.insert(name.clone(), i).is_some() {
                return Err(ExportError::new(file, format!("column `{name}` appears twice in the header"))
                    .line(line)
                    .field(name));
            }
        }
        if let Some(missing) = REQUIRED.iter().find(|c| !at.contains_key(**c)) {
            return Err(ExportError::new(file, format!("the header has no `{missing}` column; expected {EXPECTED}"))
                .line(line)
                .field(*missing));
        }
        Ok(Columns {
            name: at["name"],
            host: at["host"],
            dc: at["dc"],
            ips: at["ips"],
            role: at.get("role").copied(),
            services: at.get("services").copied(),
            serving: at.get("serving").copied(),
        })
    }

    fn container(&self, file: &str, line: usize, row: &csv::StringRecord) -> Result<ContainerRecord, ExportError> {
        let cell = |i: usize| row.get(i).unwrap_or("").trim();
        let optional = |i: Option<usize>| i.map_or("", cell);
        let err = |field: &str, message: String| ExportError::new(file, message).line(line).field(field);
        // A cell holding names (one, or a list): trimmed, without control characters.
        let names = |field: &str, i: Option<usize>| name_text(optional(i)).map_err(|message| err(field, message));
        let required = |field: &str, i: usize| match names(field, Some(i))? {
            "" => Err(err(field, format!("`{field}` must not be empty"))),
            value => Ok(value.to_owned()),
        };

        let name = required("name", self.name)?;
        let host = required("host", self.host)?;
        let dc = required("dc", self.dc)?;
        let ips = cell(self.ips)
            .split(';')
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
            .map(|ip| parse_ip(ip).map_err(|message| err("ips", message)))
            .collect::<Result<Vec<_>, _>>()?;
        if ips.is_empty() {
            return Err(err("ips", "a container needs at least one IP address".to_owned()));
        }
        let serving_text = optional(self.serving);
        let serving = match serving_text.to_ascii_lowercase().as_str() {
            "" | "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => {
                return Err(err(
                    "serving",
                    format!("invalid value {serving_text:?}; expected true/false/yes/no/1/0 or empty"),
                ))
            }
        };
        Ok(ContainerRecord {
            name,
            host,
            dc,
            role: optional_text(Some(names("role", self.role)?)),
            ips: dedup_ips(ips),
            services: clean_list(names("services", self.services)?.split(';')),
            serving,
        })
    }
}

#[cfg(test)]
mod tests {
    use graph_store::model::ServiceRecord;

    use super::*;

    #[test]
    fn columns_by_name_in_any_order_optional_ones_absent() {
        let text =
            "\r\nDC , Name,ips,Host,comment\r\nTx,a,10.0.0.1; fd00::1 ;;10.0.0.1,h1,x\r\n\r\nVA,b,10.0.0.2,h2,\r\n";
        let inv = parse_inventory_csv("i.csv", text.as_bytes()).unwrap();
        let a = &inv.containers[0];
        assert_eq!((a.name.as_str(), a.host.as_str(), a.dc.as_str()), ("a", "h1", "Tx"));
        assert_eq!(a.ips, ["10.0.0.1".parse::<std::net::IpAddr>().unwrap(), "fd00::1".parse().unwrap()]);
        assert_eq!((a.role.as_deref(), a.services.len(), a.serving), (None, 0, true));
        assert_eq!(inv.containers[1].name, "b");
        assert!(inv.services.is_empty());
    }

    #[test]
    fn lists_serving_values_and_services() {
        let text = "name,host,dc,role,ips,services,serving\n\
                    a,h,d,be,10.0.0.1,\"api; db;;api\",YES\n\
                    b,h,d,,10.0.0.2,,0\n\
                    c,h,d,fe,10.0.0.3,web,\n\
                    d,h,d,fe,10.0.0.4,api,no\n\
                    e,h,d,fe,10.0.0.5,,True\n";
        let inv = parse_inventory_csv("i.csv", text.as_bytes()).unwrap();
        let got: Vec<(&str, Option<&str>, Vec<&str>, bool)> = inv
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.role.as_deref(), c.services.iter().map(String::as_str).collect(), c.serving))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Some("be"), vec!["api", "db"], true),
                ("b", None, vec![], false),
                ("c", Some("fe"), vec!["web"], true),
                ("d", Some("fe"), vec!["api"], false),
                ("e", Some("fe"), vec![], true),
            ]
        );
        let services: Vec<ServiceRecord> =
            ["api", "db", "web"].into_iter().map(|name| ServiceRecord { name: name.into(), port: None }).collect();
        assert_eq!(inv.services, services);
    }

    /// (CSV, line, field, message)
    type Case<'a> = (&'a str, Option<usize>, Option<&'a str>, &'a str);

    #[test]
    fn refuses_bad_inventories_saying_where() {
        const H: &str = "name,host,dc,role,ips,services,serving\n";
        let row = |rest: &str| format!("{H}a,h1,Tx,be,10.0.0.1,api,true\n{rest}");
        let owned: Vec<(String, Option<usize>, Option<&str>, &str)> = vec![
            (row("b,h1,Tx,be,10.0.0.2,api\n"), Some(3), None, "6 columns, but the header has 7"),
            (row("b,h1,Tx,be,10.0.0.2,api,true,x\n"), Some(3), None, "8 columns, but the header has 7"),
            (row("b,h1,Tx,be,10.0.0.2,api,maybe\n"), Some(3), Some("serving"), "invalid value \"maybe\""),
            (row(" ,h1,Tx,be,10.0.0.2,api,true\n"), Some(3), Some("name"), "`name` must not be empty"),
            (row("b,,Tx,be,10.0.0.2,api,true\n"), Some(3), Some("host"), "`host` must not be empty"),
            (row("b,h1,,be,10.0.0.2,api,true\n"), Some(3), Some("dc"), "`dc` must not be empty"),
            (row("b,h1,Tx,be,,api,true\n"), Some(3), Some("ips"), "at least one IP address"),
            (row("b,h1,Tx,be, ; ,api,true\n"), Some(3), Some("ips"), "at least one IP address"),
            (row("b,h1,Tx,be,10.0.0.2;10.0.0.x,api,true\n"), Some(3), Some("ips"), "invalid IP address \"10.0.0.x\""),
            (
                row("\nb,h2,Tx,be,10.0.0.2,api,true\na,h3,Tx,be,10.0.0.3,api,true\n"),
                Some(5),
                Some("name"),
                "container \"a\" is listed twice (first at line 2)",
            ),
            (
                row("b,h1,Tx,be,10.0.0.2;10.0.0.1,api,true\n"),
                Some(3),
                Some("ips"),
                "IP address 10.0.0.1 is on two containers: \"b\" here and \"a\" at line 2",
            ),
            (
                row("b,h1,VA,be,10.0.0.2,api,true\n"),
                Some(3),
                Some("dc"),
                "host \"h1\" is in dc \"VA\" here but in dc \"Tx\" at line 2 (container \"a\")",
            ),
            ("name,host,ips\na,h,10.0.0.1\n".into(), Some(1), Some("dc"), "the header has no `dc` column"),
            ("\nname,host,dc,role\na,h,d,r\n".into(), Some(2), Some("ips"), "the header has no `ips` column"),
            ("name,host,dc,ips,Name\n".into(), Some(1), Some("name"), "column `name` appears twice"),
            ("".into(), None, None, "no header line"),
            (
                "name,host,dc,ips\na,h,d,\"10.0.0.1,10.0.0.2\"\n".into(),
                Some(2),
                Some("ips"),
                "invalid IP address \"10.0.0.1,10.0.0.2\"",
            ),
            ("\r\nname,host,dc,ips\r\n\r\n\r\na,h,d,x\r\n".into(), Some(5), Some("ips"), "invalid IP address \"x\""),
            (
                "name,host,dc,ips,note\na,h,d,10.0.0.1,\"two\nlines\"\n \n".into(),
                Some(4),
                None,
                "1 column, but the header has 5",
            ),
        ];
        let cases: Vec<Case> = owned.iter().map(|(t, l, f, m)| (t.as_str(), *l, *f, *m)).collect();
        for (text, line, field, message) in cases {
            let err = parse_inventory_csv("inv.csv", text.as_bytes()).unwrap_err();
            assert_eq!(err.file, "inv.csv");
            assert_eq!(err.line, line, "{text}\n{err}");
            assert_eq!(err.path, None, "{text}\n{err}");
            assert_eq!(err.field.as_deref(), field, "{text}\n{err}");
            assert!(err.message.contains(message), "{text}\n{err}");
        }
    }
}
