//! What an update's archive may hold: the checks on each entry's type and
//! name, independent of how the tar format is read.

use super::error::{TarCause, display_name};
use std::collections::HashSet;
use tar::EntryType;

/// Subtrees of the top directory that are checked but not written.
const SKIPPED: &[&str] = &["debug"];

/// Whether an entry of type `kind` named `name` is a directory (`false` for
/// a regular file); links, devices, fifos and other types are refused.
pub(super) fn is_directory(kind: EntryType, name: &[u8]) -> Result<bool, TarCause> {
    match kind {
        EntryType::Directory => Ok(true),
        // Old archives mark a directory with a trailing slash only.
        EntryType::Regular => Ok(name.ends_with(b"/")),
        EntryType::Continuous => Ok(false),
        EntryType::Link => Err(TarCause::HardLink),
        EntryType::Symlink => Err(TarCause::Symlink),
        EntryType::Char | EntryType::Block => Err(TarCause::Device),
        EntryType::Fifo => Err(TarCause::Fifo),
        other => Err(TarCause::UnsupportedType(other.as_byte())),
    }
}

/// The components of an entry's name, checked: relative, no `..`, no NUL.
pub(super) fn components(raw: &[u8]) -> Result<Vec<&[u8]>, TarCause> {
    if raw.is_empty() {
        return Err(TarCause::EmptyName);
    }
    if raw.contains(&0) {
        return Err(TarCause::NulInName);
    }
    if raw[0] == b'/' {
        return Err(TarCause::AbsolutePath);
    }
    let comps: Vec<&[u8]> = raw
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.iter().any(|c| *c == b"..") {
        return Err(TarCause::DotDot);
    }
    if comps.is_empty() {
        return Err(TarCause::EmptyName);
    }
    Ok(comps)
}

/// Checks that an entry lies inside the archive's single top directory,
/// which the first entry sets (`top`), and is not a file beside it.
pub(super) fn check_top(
    top: &mut Option<Vec<u8>>,
    comps: &[&[u8]],
    is_dir: bool,
) -> Result<(), TarCause> {
    match top {
        None => {
            if comps.len() == 1 && !is_dir {
                return Err(TarCause::TopNotDirectory);
            }
            *top = Some(comps[0].to_vec());
        }
        Some(t) => {
            if comps[0] != t.as_slice() {
                return Err(TarCause::OutsideTop(display_name(t)));
            }
            if comps.len() == 1 && !is_dir {
                return Err(TarCause::TopNotDirectory);
            }
        }
    }
    Ok(())
}

/// Whether the entry is in a subtree that is checked but not written.
pub(super) fn is_skipped(comps: &[&[u8]]) -> bool {
    comps.len() >= 2 && SKIPPED.iter().any(|d| comps[1] == d.as_bytes())
}

/// Refuses a second entry for the same path (its components as
/// [`components`] gives them, so `a/./b` and `a/b/` are `a/b`).
pub(super) fn check_unique(seen: &mut HashSet<Vec<u8>>, comps: &[&[u8]]) -> Result<(), TarCause> {
    if seen.insert(comps.join(&b'/')) {
        Ok(())
    } else {
        Err(TarCause::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_types() {
        assert!(is_directory(EntryType::Directory, b"d").unwrap());
        assert!(is_directory(EntryType::Regular, b"d/").unwrap());
        assert!(!is_directory(EntryType::new(0), b"f").unwrap());
        assert!(!is_directory(EntryType::Continuous, b"f/").unwrap());
        assert!(matches!(
            is_directory(EntryType::GNUSparse, b"f"),
            Err(TarCause::UnsupportedType(b'S'))
        ));
        assert!(matches!(
            is_directory(EntryType::new(b'Z'), b"f"),
            Err(TarCause::UnsupportedType(b'Z'))
        ));
    }

    #[test]
    fn same_path_twice_is_refused() {
        let mut seen = HashSet::new();
        let a = components(b"top/a/./b").unwrap();
        let b = components(b"top/a/b/").unwrap();
        check_unique(&mut seen, &a).unwrap();
        assert!(matches!(
            check_unique(&mut seen, &b),
            Err(TarCause::Duplicate)
        ));
        check_unique(&mut seen, &components(b"top/a").unwrap()).unwrap();
    }
}
