//! The zip archive of an artifact: writing its members, and reading them back into
//! memory with every bound and digest checked before any byte leaves this module.
//!
//! Contract of [`read`]: the archive holds at most [`MAX_MEMBERS`] members besides the
//! manifest; the manifest (`manifest.json`) is read first, at most [`MAX_MANIFEST_BYTES`]
//! (refused past that before it is parsed), and parsed ([`manifest::parse`]: member and
//! function names are plain); an archive with the `manifest.txt` of formats 1 to 3
//! instead is refused with a request to rebuild; then every member name in
//! the archive must be a plain relative path listed by the manifest, and every listed
//! member must be there, a regular file whose size in the archive's directory is the one
//! the manifest declares. A member is inflated through a reader bounded to one byte more
//! than its declared size, so one larger than declared is refused after at most that many
//! bytes, and its SHA-256 digest must be the manifest's. Nothing is written to disk.

use super::manifest::{
    self, Manifest, ManifestError, Member, MANIFEST_MEMBER, MAX_MANIFEST_BYTES, MAX_MEMBERS, OLD_MANIFEST_MEMBER,
};
use crate::error::Error;
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Why an archive is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Zip(String),
    #[error("it has {0} members, more than {MAX_MEMBERS}")]
    TooManyMembers(usize),
    #[error("it has no {MANIFEST_MEMBER}")]
    NoManifest,
    #[error("its {MANIFEST_MEMBER} is larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge,
    #[error("member `{0}` is not listed in the manifest")]
    Unlisted(String),
    #[error("member `{0}` listed in the manifest is missing")]
    Missing(String),
    #[error("member `{0}` is not a regular file")]
    NotAFile(String),
    #[error("member `{name}` is {size} bytes, the manifest declares {declared}")]
    Size { name: String, size: u64, declared: u64 },
    #[error("member `{name}` holds more than the {declared} bytes declared for it")]
    Oversized { name: String, declared: u64 },
    #[error("member `{0}` does not match its SHA-256 digest in the manifest")]
    Digest(String),
}

fn zip_error(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Zip(e.to_string())
}

/// The manifest and the contents of every member, verified.
pub struct Contents {
    pub manifest: Manifest,
    pub members: HashMap<String, Vec<u8>>,
}

/// Reads and verifies the archive at `path` (see the module docs).
pub fn read(path: &Path) -> Result<Contents, ArchiveError> {
    let file = std::fs::File::open(path).map_err(zip_error)?;
    let mut zip = zip::ZipArchive::new(file).map_err(zip_error)?;
    if zip.len() > MAX_MEMBERS + 1 {
        return Err(ArchiveError::TooManyMembers(zip.len() - 1));
    }
    if zip.index_for_name(MANIFEST_MEMBER).is_none() && zip.index_for_name(OLD_MANIFEST_MEMBER).is_some() {
        return Err(old_format(&mut zip));
    }
    let text = read_member(&mut zip, MANIFEST_MEMBER, MAX_MANIFEST_BYTES, None)?;
    let text = String::from_utf8(text).map_err(|_| zip_error(format!("{MANIFEST_MEMBER} is not UTF-8")))?;
    let manifest = manifest::parse(&text)?;
    check_names(&zip, &manifest.members)?;
    let mut members = HashMap::new();
    for m in &manifest.members {
        let bytes = read_member(&mut zip, &m.name, m.size, Some(&m.sha256))?;
        members.insert(m.name.clone(), bytes);
    }
    Ok(Contents { manifest, members })
}

/// The refusal of an archive whose manifest is the `manifest.txt` of formats 1 to 3: a
/// request to rebuild when its first line names one of them.
fn old_format<R: Read + Seek>(zip: &mut zip::ZipArchive<R>) -> ArchiveError {
    let Some(index) = zip.index_for_name(OLD_MANIFEST_MEMBER) else { return ArchiveError::NoManifest };
    let mut first = Vec::new();
    if let Ok(file) = zip.by_index(index) {
        let _ = file.take(64).read_to_end(&mut first);
    }
    let text = String::from_utf8_lossy(&first);
    ArchiveError::Manifest(manifest::old_text_format(&text).unwrap_or(ManifestError::NotArchx))
}

/// Every name in the archive is a plain path listed by the manifest (or the manifest).
fn check_names<R: Read + Seek>(zip: &zip::ZipArchive<R>, listed: &[Member]) -> Result<(), ArchiveError> {
    for i in 0..zip.len() {
        let name = zip.name_for_index(i).ok_or_else(|| zip_error("unreadable member name"))?;
        if name == MANIFEST_MEMBER {
            continue;
        }
        manifest::check_member_path(name)?;
        if !listed.iter().any(|m| m.name == name) {
            return Err(ArchiveError::Unlisted(name.to_string()));
        }
    }
    Ok(())
}

/// The member `name`, at most `declared` bytes (exactly that many when a digest is
/// given), checked against `digest`.
fn read_member<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    declared: u64,
    digest: Option<&[u8; 32]>,
) -> Result<Vec<u8>, ArchiveError> {
    let index = zip.index_for_name(name).ok_or_else(|| match digest {
        Some(_) => ArchiveError::Missing(name.to_string()),
        None => ArchiveError::NoManifest,
    })?;
    let file = zip.by_index(index).map_err(zip_error)?;
    if !file.is_file() {
        return Err(ArchiveError::NotAFile(name.to_string()));
    }
    let size = file.size();
    if digest.is_none() && size > declared {
        return Err(ArchiveError::ManifestTooLarge);
    }
    if digest.is_some() && size != declared {
        return Err(ArchiveError::Size { name: name.to_string(), size, declared });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(declared + 1).read_to_end(&mut bytes).map_err(|e| zip_error(format!("member `{name}`: {e}")))?;
    match (bytes.len() as u64 > declared, digest) {
        (true, None) => return Err(ArchiveError::ManifestTooLarge),
        (true, Some(_)) => return Err(ArchiveError::Oversized { name: name.to_string(), declared }),
        _ => {}
    }
    match digest {
        Some(d) if bytes.len() as u64 != declared || manifest::sha256(&bytes) != *d => {
            Err(ArchiveError::Digest(name.to_string()))
        }
        _ => Ok(bytes),
    }
}

/// Writes a zip archive at `path`: the manifest first, then `members` in order; a failure
/// is an [`Error::Io`].
pub fn write(path: &Path, manifest: &str, members: &[(String, &[u8])]) -> Result<(), Error> {
    let err = |e: &dyn std::fmt::Display| Error::io(format!("cannot write {}", path.display()), e);
    let file = std::fs::File::create(path).map_err(|e| err(&e))?;
    let mut zip = zip::ZipWriter::new(file);
    let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), Error> {
        zip.start_file(name, deflate).map_err(|e| err(&e))?;
        zip.write_all(bytes).map_err(|e| err(&e))
    };
    put(MANIFEST_MEMBER, manifest.as_bytes())?;
    for (name, bytes) in members {
        put(name, bytes)?;
    }
    zip.finish().map_err(|e| err(&e))?;
    Ok(())
}
