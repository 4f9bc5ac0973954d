//! How discovery names a file it watches or follows: by an absolute path whose directory's
//! links are resolved, so two spellings of one file are one name.

use std::path::{Path, PathBuf};

/// `path` made absolute, its directory's links resolved (the file itself need not exist).
/// A directory that cannot be resolved (missing, unreadable) is only made absolute.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_linked_spellings_of_one_file_are_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("logs")).unwrap();
        std::os::unix::fs::symlink(real.join("logs"), real.join("link")).unwrap();
        let want = real.join("logs").join("pdns.log");
        for spelling in [real.join("logs/pdns.log"), real.join("link/pdns.log"), real.join("logs/../link/./pdns.log")] {
            assert_eq!(absolute(&spelling), want, "{spelling:?}");
        }
        let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(absolute(Path::new("pdns.log")), cwd.join("pdns.log"));
        // A missing directory is only made absolute.
        assert_eq!(absolute(&real.join("gone/./pdns.log")), real.join("gone/pdns.log"));
    }
}
