//! Temporary files of the run directory: a file is written beside its destination and
//! renamed over it, so a reader never sees half of it.
//!
//! Contract: a [`TempFile`] owns its path from creation; unless [`TempFile::persist`]
//! renames it into place, dropping it removes the file, so no error path (a full disk,
//! a failed sync, a rename blocked by a directory) leaves a `.tmp` file behind.

use std::path::{Path, PathBuf};

/// A temporary file that is removed on drop unless persisted.
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Guards `path` (which the caller is about to write).
    pub(crate) fn new(path: PathBuf) -> TempFile {
        TempFile { path, armed: true }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over `to`; on failure the file is still removed on drop.
    pub(crate) fn persist(mut self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("archc-tmpfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn dropped_files_are_removed_and_persisted_ones_kept() {
        let dir = scratch("drop");
        let tmp = TempFile::new(dir.join("a.tmp"));
        std::fs::write(tmp.path(), "x").unwrap();
        drop(tmp);
        assert!(!dir.join("a.tmp").exists());
        let tmp = TempFile::new(dir.join("b.tmp"));
        std::fs::write(tmp.path(), "y").unwrap();
        tmp.persist(&dir.join("b")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "y");
        assert!(!dir.join("b.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_removes_the_file() {
        let dir = scratch("rename");
        std::fs::create_dir_all(dir.join("target/inside")).unwrap(); // a non-empty directory blocks the rename
        let tmp = TempFile::new(dir.join("c.tmp"));
        std::fs::write(tmp.path(), "z").unwrap();
        assert!(tmp.persist(&dir.join("target")).is_err());
        assert!(!dir.join("c.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
