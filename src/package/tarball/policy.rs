//! What an update's archive may hold: the checks on each entry's type and
//! name, independent of how the tar format is read.

use super::error::{TarCause, display_name};

/// Subtrees of the top directory that are checked but not written.
const SKIPPED: &[&str] = &["debug"];

/// Whether an entry of type `typeflag` named `name` is a directory (`false`
/// for a regular file); links, devices, fifos and other types are refused.
pub(super) fn is_directory(typeflag: u8, name: &[u8]) -> Result<bool, TarCause> {
    match typeflag {
        b'5' => Ok(true),
        b'0' | 0 | b'7' => Ok(name.ends_with(b"/") && typeflag != b'7'),
        b'1' => Err(TarCause::HardLink),
        b'2' => Err(TarCause::Symlink),
        b'3' | b'4' => Err(TarCause::Device),
        b'6' => Err(TarCause::Fifo),
        t => Err(TarCause::UnsupportedType(t)),
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
