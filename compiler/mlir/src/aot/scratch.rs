//! Private scratch folders for artifacts: the sources a runner rebuilds from, the shared
//! object it loads, the files a build passes between LLVM's tools.
//!
//! Contract: [`private_dir`] creates a fresh folder under the system's temporary folder
//! with a random name, mode 0700, failing rather than reusing one that exists, and
//! removes it with everything in it when the returned [`TempDir`] is dropped.
//! [`write_new`] writes a file below such a folder under a plain relative name (checked
//! as member names are), creating it exclusively (`O_CREAT | O_EXCL`: never through an
//! existing file or link), mode 0600. So no other user can read, replace or redirect
//! what is written, and nothing lands outside the folder. Failures are [`Error::Io`]
//! (a refused name, [`Error::Manifest`]).

use super::manifest::check_member_path;
use crate::error::{Error, Result};
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
pub use tempfile::TempDir;

/// A fresh private folder named `<prefix><random>`.
pub fn private_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| Error::io("cannot create a private temporary folder", e))
}

/// Writes `bytes` to `dir/rel`, a new file (see the module docs); returns its path.
pub fn write_new(dir: &Path, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
    check_member_path(rel)?;
    let path = dir.join(rel);
    let cannot = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
    if let Some(parent) = path.parent().filter(|p| *p != dir) {
        DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(cannot)?;
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(cannot)?;
    file.write_all(bytes).map_err(cannot)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_fresh_owner_only_and_removed_on_drop() {
        let a = private_dir("archc-test-").expect("dir");
        let b = private_dir("archc-test-").expect("dir");
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn files_are_created_exclusively_below_the_folder() {
        let dir = private_dir("archc-test-").expect("dir");
        let p = write_new(dir.path(), "src/lib/m.arch", b"x").expect("writes");
        assert_eq!(std::fs::read(&p).expect("reads"), b"x");
        let e = write_new(dir.path(), "src/lib/m.arch", b"y").expect_err("exists").to_string();
        assert!(e.contains("exists"), "{e}");
        let outside = dir.path().join("victim");
        std::os::unix::fs::symlink(&outside, dir.path().join("link")).expect("symlink");
        assert!(write_new(dir.path(), "link", b"z").is_err());
        assert!(!outside.exists(), "written through a link");
        assert!(write_new(dir.path(), "../escape", b"z").is_err());
    }
}
