//! Loading `.arch` files and checking them: user modules are `NAME.arch` files in the
//! main file's directory.

use archc_compiler::sema::{check_file, CheckOutput, ModuleSource, Options};
use std::path::{Path, PathBuf};

/// User modules from the directory of the main file.
pub struct FsModules {
    pub dir: PathBuf,
}

impl ModuleSource for FsModules {
    fn load(&self, name: &str) -> Option<(String, String)> {
        let path = self.dir.join(format!("{}.arch", name.replace('.', "/")));
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path.display().to_string(), text))
    }
}

/// Reads and checks a file. `Err` only when the file cannot be read.
pub fn check_path(path: &Path, opts: &Options) -> Result<CheckOutput, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(check_file(&path.display().to_string(), &text, &FsModules { dir }, opts))
}

/// Parses `k=v,k=v` lists from the command line.
pub fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or_else(|| format!("expected NAME=VALUE, found `{p}`"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}
