//! The monitoring deploy files against the real tools. `nagios4 -v` must accept
//! deploy/nagios/ under a minimal main configuration of the test's own and beside Debian's
//! stock objects, with no warning, and must refuse a broken copy; the services it builds
//! must be the expected ones, and the command lines Nagios would run must be ones the
//! `edgewatch` binary accepts. A running Nagios must take the passive results edgewatch
//! writes into its command file. `icinga2 daemon -C` must accept deploy/icinga2/ likewise.
//!
//! Needs Debian's nagios4-core and icinga2-bin, which `make test` installs
//! (`scripts/install-deps.sh nagios`). Without them, and not root, the tests skip and say
//! why; under CI, or as root, a missing tool is a failure.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::{edgewatch, json, ok, sample};
use graph_store::testing::TestDb;

/// One object of Nagios's precached object file: its type and its directives.
type Object = (String, BTreeMap<String, String>);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The program's path: on PATH, or in /usr/sbin (not on an ordinary user's PATH). `None`
/// (skip, saying why) when it is missing and we are neither root nor under CI.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    if let Some(found) = on_path.chain([PathBuf::from("/usr/sbin")]).map(|dir| dir.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    let why = format!("{name} is not installed (Debian package {package}; `make test` installs it)");
    assert!(std::env::var_os("CI").is_none(), "CI must have {name}: {why}");
    assert!(!is_root(), "{why}: run scripts/install-deps.sh nagios");
    eprintln!("SKIPPED: {why}, and not root to install it");
    None
}

/// The user and group the tools may run as: our own.
fn user_and_group() -> (String, String) {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().map(|u| u.name);
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid()).unwrap().map(|g| g.name);
    (user.unwrap_or_else(|| "root".into()), group.unwrap_or_else(|| "root".into()))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// deploy/nagios/*.cfg, in name order.
fn deploy_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/nagios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "deploy/nagios has no command and service files: {files:?}");
    files
}

/// What Debian's stock objects provide and the deploy files use: time period 24x7,
/// contact group admins, templates generic-host and generic-service.
const STOCK: &str = "
define timeperiod {
    timeperiod_name     24x7
    alias               always
    sunday              00:00-24:00
    monday              00:00-24:00
    tuesday             00:00-24:00
    wednesday           00:00-24:00
    thursday            00:00-24:00
    friday              00:00-24:00
    saturday            00:00-24:00
}
define command {
    command_name        notify-nobody
    command_line        /bin/true
}
define contact {
    contact_name                    oncall
    alias                           on call
    service_notification_period     24x7
    host_notification_period        24x7
    service_notification_options    w,u,c,r
    host_notification_options       d,u,r
    service_notification_commands   notify-nobody
    host_notification_commands      notify-nobody
}
define contactgroup {
    contactgroup_name   admins
    alias               admins
    members             oncall
}
define host {
    name                generic-host
    notification_period 24x7
    register            0
}
define service {
    name                generic-service
    check_period        24x7
    max_check_attempts  3
    check_interval      10
    retry_interval      2
    contact_groups      admins
    notification_period 24x7
    register            0
}
";

/// Services that use the commands no shipped service uses.
const MORE_SERVICES: &str = "
define service {
    use                 edgewatch-service
    host_name           edgewatch
    service_description edgewatch broken edges Tx
    check_command       check_edgewatch_dc!Tx!0!10!--role be
}
define service {
    use                 edgewatch-service
    host_name           edgewatch
    service_description edgewatch pushed
    check_command       check_edgewatch_passive!0!20!--flapping-is-critical
}
";

/// `objects.cfg` in `dir`: [STOCK], the CMDB hosts `hosts` in the host group
/// edgewatch-hosts, and [MORE_SERVICES].
fn objects_file(dir: &Path, hosts: &[&str]) -> PathBuf {
    let mut objects = STOCK.to_string();
    for host in hosts {
        objects.push_str(&format!(
            "define host {{\n    use generic-host\n    host_name {host}\n    check_period 24x7\n    \
             max_check_attempts 3\n    contact_groups admins\n    hostgroups edgewatch-hosts\n}}\n"
        ));
    }
    objects.push_str(MORE_SERVICES);
    let path = dir.join("objects.cfg");
    std::fs::write(&path, objects).unwrap();
    path
}

/// A main configuration with every path in `dir`, reading `objects` (files or dirs).
fn main_config(dir: &Path, objects: &[PathBuf]) -> PathBuf {
    let (user, group) = user_and_group();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("checkresults")).unwrap();
    let mut cfg = String::new();
    for path in objects {
        let key = if path.is_dir() { "cfg_dir" } else { "cfg_file" };
        cfg.push_str(&format!("{key}={}\n", path.display()));
    }
    cfg.push_str(&format!(
        "log_file={d}/nagios.log
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
status_file={d}/status.dat
state_retention_file={d}/retention.dat
temp_file={d}/nagios.tmp
temp_path={d}
check_result_path={d}/checkresults
lock_file={d}/nagios.lock
command_file={d}/nagios.cmd
query_socket={d}/nagios.qh
debug_file={d}/nagios.debug
nagios_user={user}
nagios_group={group}
check_external_commands=1
illegal_macro_output_chars=`~$&|'\"<>
"
    ));
    let main = dir.join("nagios.cfg");
    std::fs::write(&main, cfg).unwrap();
    main
}

/// `nagios4 -v -p MAIN`: verifies, and writes the expanded objects to the precache file.
fn verify(nagios: &Path, main: &Path) -> Output {
    Command::new(nagios).arg("-v").arg("-p").arg(main).output().unwrap()
}

fn count(report: &str, what: &str) -> usize {
    let line = report.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what:?} in:\n{report}"));
    line[what.len()..].trim().parse().unwrap()
}

fn assert_clean(out: &Output) {
    let report = text(out);
    assert!(out.status.success(), "nagios4 -v failed ({}):\n{report}", out.status);
    assert_eq!(count(&report, "Total Errors:"), 0, "{report}");
    let warnings: Vec<&str> = report.lines().filter(|l| l.starts_with("Warning")).collect();
    assert_eq!(count(&report, "Total Warnings:"), 0, "warnings: {warnings:#?}\n{report}");
}

/// The objects of a precached object file (`define TYPE {`, tab-separated directives, `}`).
fn precache(path: &Path) -> Vec<Object> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut objects = Vec::new();
    let mut current: Option<Object> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(kind) = line.strip_prefix("define ").and_then(|l| l.strip_suffix(" {")) {
            current = Some((kind.to_string(), BTreeMap::new()));
        } else if line == "}" {
            objects.push(current.take().expect("} outside a definition"));
        } else if let Some((_, fields)) = current.as_mut() {
            let (key, value) = line.split_once('\t').unwrap_or((line, ""));
            fields.insert(key.to_string(), value.trim().to_string());
        }
    }
    objects
}

fn of_kind<'a>(objects: &'a [Object], kind: &str) -> Vec<&'a BTreeMap<String, String>> {
    objects.iter().filter(|(k, _)| k == kind).map(|(_, o)| o).collect()
}

/// `host;service` → the service's directives.
fn services(objects: &[Object]) -> BTreeMap<String, BTreeMap<String, String>> {
    of_kind(objects, "service")
        .into_iter()
        .map(|s| (format!("{};{}", s["host_name"], s["service_description"]), s.clone()))
        .collect()
}

#[test]
fn nagios_accepts_the_deploy_files_and_builds_the_expected_services() {
    let Some(nagios) = tool("nagios4", "nagios4-core") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut objects = vec![objects_file(dir.path(), &["host101", "host201"])];
    objects.extend(deploy_files());
    let out = verify(&nagios, &main_config(dir.path(), &objects));
    assert_clean(&out);

    let objects = precache(&dir.path().join("objects.precache"));
    let services = services(&objects);
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "edgewatch;edgewatch affected nodes",
            "edgewatch;edgewatch broken edges",
            "edgewatch;edgewatch broken edges Tx",
            "edgewatch;edgewatch pushed",
            "host101;edgewatch connectivity",
            "host201;edgewatch connectivity",
        ])
    );
    // The active checks wait for 3 results in a row before they page.
    let broken = &services["edgewatch;edgewatch broken edges"];
    assert_eq!(broken["check_command"], "check_edgewatch!0!20");
    assert_eq!(broken["active_checks_enabled"], "1");
    assert_eq!(broken["max_check_attempts"], "3");
    assert_eq!(broken["contact_groups"], "admins");
    // The passive ones take edgewatch's word at once, and start OK.
    let passive = &services["host101;edgewatch connectivity"];
    for (key, value) in [
        ("active_checks_enabled", "0"),
        ("passive_checks_enabled", "1"),
        ("check_freshness", "0"),
        ("max_check_attempts", "1"),
        ("initial_state", "o"),
        ("flap_detection_enabled", "0"),
    ] {
        assert_eq!(passive[key], value, "{key} of {passive:#?}");
    }
}

/// Debian's own main configuration and stock objects (templates, contacts, time periods,
/// the monitoring plugins' commands), with deploy/nagios/ in place of conf.d: no name
/// clashes, and the stock templates are all the files need.
#[test]
fn nagios_accepts_the_deploy_files_beside_debians_stock_configuration() {
    let Some(nagios) = tool("nagios4", "nagios4-core") else { return };
    let stock = Path::new("/etc/nagios4/nagios.cfg");
    let Ok(stock_cfg) = std::fs::read_to_string(stock) else {
        assert!(std::env::var_os("CI").is_none(), "CI must have {}", stock.display());
        eprintln!("SKIPPED: no readable {} (Debian's nagios4-common)", stock.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    for file in deploy_files() {
        std::fs::copy(&file, conf_d.join(file.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        conf_d.join("hosts.cfg"),
        "define host {\n    use linux-server\n    host_name host101\n    address 127.20.1.1\n    \
         hostgroups edgewatch-hosts\n}\n",
    )
    .unwrap();
    // The stock settings, but every file Nagios would write in `dir`; the resource file
    // ($USERn$ macros) only when we may read it.
    let ours = std::fs::read_to_string(main_config(dir.path(), &[])).unwrap();
    let our_keys: BTreeSet<&str> = ours.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
    let mut cfg = String::new();
    for line in stock_cfg.lines() {
        let (key, value) = line.split_once('=').map_or(("", ""), |(k, v)| (k.trim(), v.trim()));
        let unreadable = key == "resource_file" && std::fs::File::open(value).is_err();
        if our_keys.contains(key) || unreadable || line == "cfg_dir=/etc/nagios4/conf.d" {
            continue;
        }
        cfg.push_str(line);
        cfg.push('\n');
    }
    assert!(cfg.contains("cfg_file=/etc/nagios4/objects/templates.cfg"), "not Debian's stock nagios.cfg:\n{cfg}");
    cfg.push_str(&format!("cfg_dir={}\n{ours}", conf_d.display()));
    let main = dir.path().join("nagios.cfg");
    std::fs::write(&main, cfg).unwrap();
    assert_clean(&verify(&nagios, &main));

    let services = services(&precache(&dir.path().join("objects.precache")));
    assert!(services.contains_key("host101;edgewatch connectivity"), "{:#?}", services.keys());
    assert!(services.contains_key("edgewatch;edgewatch broken edges"), "{:#?}", services.keys());
}

/// A copy in which a command the services use is gone: Nagios must refuse it.
#[test]
fn nagios_refuses_a_copy_without_the_check_command() {
    let Some(nagios) = tool("nagios4", "nagios4-core") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut objects = vec![objects_file(dir.path(), &["host101", "host201"])];
    let mut renamed = 0;
    for file in deploy_files() {
        let copy = dir.path().join(file.file_name().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        let broken: String = text
            .lines()
            .map(|l| {
                if l.split_whitespace().eq(["command_name", "check_edgewatch"]) {
                    renamed += 1;
                    "    command_name    check_edgewatch_gone\n".to_string()
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&copy, broken).unwrap();
        objects.push(copy);
    }
    assert_eq!(renamed, 1, "no `command_name check_edgewatch` in deploy/nagios");
    let out = verify(&nagios, &main_config(dir.path(), &objects));
    let report = text(&out);
    assert!(!out.status.success(), "nagios4 -v accepted a service whose command is missing:\n{report}");
    assert!(
        report.contains("Service check command 'check_edgewatch!0!20' specified in service 'edgewatch broken edges'"),
        "{report}"
    );
}

/// `$ARGn$` and `$COMMANDFILE$` of a service's check_command put into its command line,
/// as Nagios does.
fn expand(command_line: &str, check_command: &str, command_file: &Path) -> String {
    let args: Vec<&str> = check_command.split('!').skip(1).collect();
    let mut line = command_line.replace("$COMMANDFILE$", command_file.to_str().unwrap());
    for n in (1..=32).rev() {
        line = line.replace(&format!("$ARG{n}$"), args.get(n - 1).copied().unwrap_or(""));
    }
    assert!(!line.contains('$'), "a macro the test does not know in {line:?}");
    line
}

/// Every command line the services would run, run as Nagios would (through /bin/sh) with
/// the binary under test and a configuration whose database does not answer: each must
/// get past the argument parser (an error there exits 2, CRITICAL) to an UNKNOWN. The
/// passive services' freshness command must say UNKNOWN too.
#[test]
fn the_command_lines_nagios_would_run_are_ones_edgewatch_accepts() {
    let Some(nagios) = tool("nagios4", "nagios4-core") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut objects = vec![objects_file(dir.path(), &["host101", "host201"])];
    objects.extend(deploy_files());
    assert_clean(&verify(&nagios, &main_config(dir.path(), &objects)));
    let objects = precache(&dir.path().join("objects.precache"));
    let commands: BTreeMap<&str, &str> = of_kind(&objects, "command")
        .into_iter()
        .map(|c| (c["command_name"].as_str(), c["command_line"].as_str()))
        .collect();

    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "database_url = \"postgres://edgewatch@127.0.0.1:1/edgewatch\"\n").unwrap();
    let command_file = dir.path().join("nagios.cmd");
    let mut ran = BTreeSet::new();
    for (name, service) in services(&objects) {
        let check = &service["check_command"];
        let command = check.split('!').next().unwrap();
        let line = expand(commands[command], check, &command_file);
        let is_edgewatch = line.starts_with("/usr/local/bin/edgewatch --config /etc/edgewatch/edgewatch.toml ");
        let is_dummy = line.starts_with("/usr/lib/nagios/plugins/check_dummy ");
        assert!(is_edgewatch || is_dummy, "{name}: runs something else: {line}");
        if is_dummy && !Path::new("/usr/lib/nagios/plugins/check_dummy").exists() {
            continue;
        }
        let line = line
            .replace("/usr/local/bin/edgewatch", env!("CARGO_BIN_EXE_edgewatch"))
            .replace("/etc/edgewatch/edgewatch.toml", config.to_str().unwrap());
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .env_remove("DATABASE_URL")
            .env_remove("EDGEWATCH_CONFIG")
            .env_remove("EDGEWATCH_DATA_DIR")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let first = if is_edgewatch { "EDGEWATCH UNKNOWN - " } else { "UNKNOWN: " };
        assert_eq!(out.status.code(), Some(3), "{name}: {line}\n{}", text(&out));
        assert!(stdout.starts_with(first), "{name}: {line}\n{}", text(&out));
        ran.insert(command.to_string());
    }
    for command in ["check_edgewatch", "check_edgewatch_dc", "check_edgewatch_passive"] {
        assert!(ran.contains(command), "no service ran {command}: {ran:?}");
    }
    assert!(!command_file.exists(), "a check that could not reach the database wrote passive results");
}

/// `icinga2 daemon -C` on deploy/icinga2/edgewatch.conf, as the user we are, with its cache
/// in a temporary directory.
fn icinga_validate(icinga: &Path, dir: &Path, conf: &Path) -> Output {
    let (user, group) = user_and_group();
    let main = dir.join("icinga2.conf");
    std::fs::write(
        &main,
        format!(
            "include <itl>\ninclude \"{}\"\n\
             object Host \"host101\" {{ check_command = \"dummy\"; groups = [ \"edgewatch-hosts\" ] }}\n\
             object Host \"host201\" {{ check_command = \"dummy\"; groups = [ \"edgewatch-hosts\" ] }}\n\
             object Host \"switch1\" {{ check_command = \"dummy\" }}\n",
            conf.display()
        ),
    )
    .unwrap();
    Command::new(icinga)
        .args(["daemon", "-C", "-c"])
        .arg(&main)
        .arg("-D")
        .arg(format!("CacheDir={}", dir.display()))
        .env("ICINGA2_USER", user)
        .env("ICINGA2_GROUP", group)
        .output()
        .unwrap()
}

#[test]
fn icinga2_accepts_the_deploy_file_and_applies_the_expected_services() {
    let Some(icinga) = tool("icinga2", "icinga2-bin") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = icinga_validate(&icinga, dir.path(), &repo().join("deploy/icinga2/edgewatch.conf"));
    let report = text(&out);
    assert!(out.status.success(), "icinga2 daemon -C failed ({}):\n{report}", out.status);
    let complaints: Vec<&str> = report.lines().filter(|l| l.contains("warning/") || l.contains("critical/")).collect();
    assert!(complaints.is_empty(), "{complaints:#?}");

    let (user, group) = user_and_group();
    let out = Command::new(&icinga)
        .args(["object", "list", "--type", "Service", "-D"])
        .arg(format!("CacheDir={}", dir.path().display()))
        .env("ICINGA2_USER", user)
        .env("ICINGA2_GROUP", group)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> =
        listing.lines().filter_map(|l| l.strip_prefix("Object '")?.strip_suffix("' of type 'Service':")).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "edgewatch!edgewatch affected nodes",
            "edgewatch!edgewatch broken edges",
            "host101!edgewatch connectivity",
            "host201!edgewatch connectivity",
        ])
    );
}

#[test]
fn icinga2_refuses_a_copy_without_the_check_command() {
    let Some(icinga) = tool("icinga2", "icinga2-bin") else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = std::fs::read_to_string(repo().join("deploy/icinga2/edgewatch.conf")).unwrap();
    let broken = conf.replace("object CheckCommand \"edgewatch\"", "object CheckCommand \"edgewatch-gone\"");
    assert_ne!(broken, conf, "no CheckCommand \"edgewatch\" in deploy/icinga2/edgewatch.conf");
    let copy = dir.path().join("edgewatch.conf");
    std::fs::write(&copy, broken).unwrap();
    let out = icinga_validate(&icinga, dir.path(), &copy);
    let report = text(&out);
    assert!(!out.status.success(), "icinga2 accepted a service whose command is missing:\n{report}");
    assert!(report.contains("'edgewatch'") && report.contains("does not exist"), "{report}");
}

/// The flags of the Icinga CheckCommand's `arguments`, each with whether Icinga gives it a
/// value, as written in deploy/icinga2/edgewatch.conf.
fn icinga_arguments(conf: &str) -> Vec<(String, bool)> {
    let block = conf.split_once("arguments = {").expect("no `arguments = {` in the CheckCommand").1;
    let mut flags = Vec::new();
    let mut lines = block.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line == "}" {
            break;
        }
        let Some((flag, rest)) = line.strip_prefix('"').and_then(|l| l.split_once("\" = ")) else { continue };
        let takes_value = if rest == "{" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "}").collect();
            body.iter().any(|l| l.trim().starts_with("value ="))
        } else {
            rest.starts_with('"')
        };
        flags.push((flag.to_string(), takes_value));
    }
    flags
}

/// Every flag the Icinga CheckCommand passes is one `edgewatch check nagios` has, taking a
/// value exactly when Icinga gives it one. (Nagios's command lines are run for real above.)
#[test]
fn icinga2_passes_only_flags_edgewatch_check_nagios_has() {
    let out = Command::new(env!("CARGO_BIN_EXE_edgewatch")).args(["check", "nagios", "--help"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    let conf = std::fs::read_to_string(repo().join("deploy/icinga2/edgewatch.conf")).unwrap();
    let flags = icinga_arguments(&conf);
    assert!(flags.len() >= 10, "{flags:?}");
    for (flag, takes_value) in flags {
        let entry = help
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('-') && l.split([',', ' ']).any(|word| word == flag))
            .unwrap_or_else(|| panic!("edgewatch check nagios has no {flag}:\n{help}"));
        assert_eq!(entry.contains('<'), takes_value, "{flag}: Icinga's value or its absence does not fit {entry:?}");
    }
}

/// A Nagios daemon of the test's own, stopped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// Waits until Nagios's log has `lines`, each a line's beginning; returns the log.
fn wait_for_log(log: &Path, lines: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let missing: Vec<&String> = lines.iter().filter(|l| !text.lines().any(|t| t.contains(l.as_str()))).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "Nagios's log never got {missing:#?}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The real thing: Nagios running on the deploy files (checks of its own off), and
/// `edgewatch check nagios --passive` writing into its command file, a FIFO. Each problem
/// host's `edgewatch connectivity` goes CRITICAL and HARD at once, with edgewatch's text,
/// alerts once however often it is sent again, and is OK when its edges are repaired; a
/// host edgewatch has no word about stays quiet; Nagios knows every host it is told about.
#[tokio::test]
async fn a_running_nagios_takes_the_passive_results_edgewatch_writes() {
    let Some(nagios) = tool("nagios4", "nagios4-core") else { return };
    let db = TestDb::new().await;
    // Nothing listens on the sample fleet's service ports: every DNS edge goes down.
    ok(&db, &["cmdb", "import", &sample("inventory.json"), &sample("links.txt")]);
    ok(&db, &["dns", "ingest", "--zone", "example.com", &sample("pdns-auth-console.log")]);
    ok(&db, &["probe", "--interval", "1s", "--packets", "1", "--timeout", "200ms", "--run-for", "4s"]);
    let nodes = json(&db, &["graph", "nodes", "--format", "json"]);
    let host_of: BTreeMap<String, String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n["host"].as_str().unwrap().to_string()))
        .collect();
    let down = json(&db, &["graph", "edges", "--state", "down", "--format", "json"]);
    let problem_hosts: BTreeSet<String> =
        down.as_array().unwrap().iter().map(|e| host_of[e["src"].as_str().unwrap()].clone()).collect();
    assert!(problem_hosts.contains("host101"), "{problem_hosts:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut hosts: Vec<&str> = host_of.values().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
    hosts.push("switch1");
    let mut objects = vec![objects_file(dir.path(), &hosts)];
    objects.extend(deploy_files());
    let main = main_config(dir.path(), &objects);
    let mut cfg = std::fs::read_to_string(&main).unwrap();
    cfg.push_str("execute_service_checks=0\nexecute_host_checks=0\nenable_notifications=0\nlog_passive_checks=1\n");
    std::fs::write(&main, cfg).unwrap();
    let log = dir.path().join("nagios.log");
    let command_file = dir.path().join("nagios.cmd");
    let _nagios = Daemon(Command::new(&nagios).arg(&main).stdout(std::process::Stdio::null()).spawn().unwrap());
    wait_for_log(&log, &["Successfully launched command file worker".to_string()]);
    assert!(command_file.exists(), "Nagios made no command file");

    // No stored diagnosis is reused: each run sees the edges as they are.
    let config = dir.path().join("edgewatch.toml");
    std::fs::write(&config, "[check]\ndiagnosis_max_age = \"0s\"\n").unwrap();
    let push = |db: &TestDb| {
        let (config, file) = (config.to_str().unwrap(), command_file.to_str().unwrap());
        let out = edgewatch(
            db,
            &["--config", config, "check", "nagios", "--max-age", "10m", "--passive", "--command-file", file],
        );
        assert!(matches!(out.status.code(), Some(0..=2)), "{}", text(&out));
    };
    let alert = |host: &str, state: &str| format!("SERVICE ALERT: {host};edgewatch connectivity;{state};HARD;1;");

    push(&db);
    let critical: Vec<String> = problem_hosts.iter().map(|h| alert(h, "CRITICAL") + "EDGEWATCH CRITICAL - ").collect();
    wait_for_log(&log, &critical);
    graph_store::testing::execute(
        &db.pool,
        "UPDATE edge_health SET state = 'up', flapping = false WHERE edge_id IN \
         (SELECT e.id FROM edges e JOIN nodes n ON n.id = e.src_id WHERE n.host = 'host101')",
    )
    .await;
    push(&db);
    let logged = wait_for_log(&log, &[alert("host101", "OK") + "EDGEWATCH OK - host101: "]);

    let alerts: Vec<&str> = logged.lines().filter(|l| l.contains("SERVICE ALERT: ")).collect();
    for host in &problem_hosts {
        let once = alerts.iter().filter(|l| l.contains(&alert(host, "CRITICAL"))).count();
        assert_eq!(once, 1, "{host}: {alerts:#?}");
    }
    assert_eq!(alerts.len(), problem_hosts.len() + 1, "{alerts:#?}");
    assert!(!logged.contains("switch1;"), "a host edgewatch said nothing about:\n{logged}");
    assert!(!logged.contains("could not be found"), "Nagios did not know a host:\n{logged}");
}
