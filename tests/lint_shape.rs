//! `scripts/lint-shape.py` (run by `make lint`): it passes on this tree, and fails, naming
//! file and line, on a function over 100 lines or a file without its `//!` line — while
//! test code, strings and comments with braces in them are not counted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lint-shape.py")
}

fn run(args: &[&Path]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs (it is installed by scripts/install-schemathesis.sh when missing)")
}

/// A function of `lines` lines (signature to closing brace), with braces hidden in a
/// string, a char and a comment.
fn function(name: &str, lines: usize) -> String {
    let mut f = format!("fn {name}() {{\n    let _s = \"}}}}\"; // }}\n    let _c = '}}';\n");
    for i in 0..lines - 4 {
        f.push_str(&format!("    let _x{i} = {i};\n"));
    }
    f.push_str("}\n");
    f
}

#[test]
fn the_tree_passes() {
    let out = run(&[]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn long_functions_and_missing_headers_fail_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.rs");
    std::fs::write(&ok, format!("//! Fine.\n\n{}", function("hundred", 100))).unwrap();
    let long = dir.path().join("long.rs");
    std::fs::write(
        &long,
        format!(
            "//! Too long.\n\n{}\n#[cfg(test)]\nmod tests {{\n{}}}\n",
            function("hundred_and_one", 101),
            function("long_test_is_fine", 300)
        ),
    )
    .unwrap();
    let bare = dir.path().join("bare.rs");
    std::fs::write(&bare, "// not a module doc\nfn main() {}\n").unwrap();

    let out = run(&[&ok]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let out = run(&[&ok, &long, &bare]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(&format!("{}:3: fn hundred_and_one is 101 lines", long.display())), "{text}");
    assert!(lines[1].starts_with(&format!("{}:1: no `//!` line", bare.display())), "{text}");
}
