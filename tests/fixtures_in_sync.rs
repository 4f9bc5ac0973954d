//! `examples/sample-fleet/` is a copy of the shared fixtures (so a clone of this
//! repository alone has them); when `shared/` sits beside the repository, as in CI, the
//! copies must not have drifted.

use std::path::Path;

#[test]
fn the_bundled_sample_fleet_equals_the_shared_fixtures() {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-fleet");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/sample-fleet");
    if !shared.is_dir() {
        eprintln!("SKIP: no shared/fixtures beside the repository");
        return;
    }
    let mut compared = 0;
    for entry in std::fs::read_dir(&shared).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let copy = ours.join(&name);
        assert!(copy.exists(), "{} is not bundled in examples/sample-fleet", name.to_string_lossy());
        assert!(
            std::fs::read(entry.path()).unwrap() == std::fs::read(&copy).unwrap(),
            "{} differs",
            name.to_string_lossy()
        );
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} fixture files");
}
