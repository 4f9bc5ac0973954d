//! The CSV inventory export: a header `name,host,dc,role,ips,services,serving` (columns
//! found by name, any order, `name`, `host`, `dc` and `ips` required), then one container
//! per row. Lists are `;`-separated; `serving` is true/false/yes/no/1/0, empty meaning true.
//! There is no port column, so every service comes out without a port.

use std::collections::HashMap;

use graph_store::model::{ContainerRecord, Inventory};

use super::{
    all_services, check_containers, clean_list, decode, dedup_ips, optional_text, parse_ip, Place,
};
use crate::ExportError;

/// Parses a CSV inventory export; containers come out in file order.
pub fn parse_inventory_csv(file: &str, bytes: &[u8]) -> Result<Inventory, ExportError> {
    parse(file, decode(file, bytes)?)
}

const EXPECTED: &str = "name,host,dc,role,ips,services,serving";
const REQUIRED: [&str; 4] = ["name", "host", "dc", "ips"];

pub(super) fn parse(file: &str, text: &str) -> Result<Inventory, ExportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(header) => header.map_err(|err| csv_error(file, &err))?,
        None => {
            return Err(ExportError::new(file, format!("no header line; expected {EXPECTED}")))
        }
    };
    let columns = Columns::new(file, &header)?;

    let mut located = Vec::new();
    for record in records {
        let record = record.map_err(|err| csv_error(file, &err))?;
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(ExportError::new(
                file,
                format!("{} columns, but the header has {}", record.len(), header.len()),
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

fn line_of(record: &csv::StringRecord) -> usize {
    record.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX))
}

fn csv_error(file: &str, err: &csv::Error) -> ExportError {
    let out = ExportError::new(file, format!("invalid CSV: {err}"));
    match err.position() {
        Some(pos) => out.line(usize::try_from(pos.line()).unwrap_or(usize::MAX)),
        None => out,
    }
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
    fn new(file: &str, header: &csv::StringRecord) -> Result<Columns, ExportError> {
        let line = line_of(header);
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
            return Err(ExportError::new(
                file,
                format!("the header has no `{missing}` column; expected {EXPECTED}"),
            )
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
        let required = |field: &str, i: usize| match cell(i) {
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
            role: optional_text(Some(optional(self.role))),
            ips: dedup_ips(ips),
            services: clean_list(optional(self.services).split(';')),
            serving,
        })
    }
}
