//! What ksplice-apply keeps about an applied update
//! (`$KSPLICE_STATE/<kid>/`: description, patched functions, contents,
//! patch), read by ksplice-view and ksplice-undo.

use crate::package::patched::parse_patched;
use crate::package::{Contents, Update};
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// What ksplice-apply keeps about an applied update, in `STATE/<kid>/`.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The update's description.
    pub description: Option<String>,
    /// The functions it changes.
    pub patched: Option<Vec<(String, String)>>,
    /// Its modules (when `contents` is recorded and readable).
    pub contents: Option<Contents>,
    /// The source patch.
    pub patch: Option<String>,
}

/// The files of an update a record keeps.
const RECORDED: &[&str] = &["description", "patched", "contents", "patch"];

impl Record {
    /// The record directory of `kid`.
    pub fn dir(state: &Path, kid: &str) -> PathBuf {
        state.join(kid)
    }

    /// Records `update` as applied (replacing an older record).
    pub fn save(state: &Path, update: &Update) -> Result<()> {
        let dir = Self::dir(state, &update.kid);
        let tmp = state.join(format!(".{}.tmp", update.kid));
        let res = (|| -> Result<()> {
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp)?;
            for f in RECORDED {
                let src = update.file(f);
                if src.is_file() {
                    fs::copy(&src, tmp.join(f))?;
                }
            }
            if dir.exists() {
                fs::remove_dir_all(&dir)?;
            }
            fs::rename(&tmp, &dir)?;
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res.with_context(|| format!("{}: cannot record the update", dir.display()))
    }

    /// The record of `kid`, `None` when there is none.
    pub fn load(state: &Path, kid: &str) -> Option<Record> {
        let dir = Self::dir(state, kid);
        if !dir.is_dir() {
            return None;
        }
        let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
        Some(Record {
            description: read("description"),
            patched: read("patched").map(|t| parse_patched(&t)),
            contents: read("contents").and_then(|t| Contents::parse(&t, kid).ok()),
            patch: read("patch"),
        })
    }

    /// Removes the record of `kid`, if any.
    pub fn remove(state: &Path, kid: &str) -> Result<()> {
        let dir = Self::dir(state, kid);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot remove", dir.display())),
        }
    }
}

/// The first line of a description, or the text ksplice-view shows without one.
pub fn short_description(d: Option<&str>) -> String {
    d.and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no description available".to_string())
}
