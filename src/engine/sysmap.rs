//! System.map: the running kernel's symbol addresses, as candidates the
//! loader checks during run-pre matching.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Symbol name to every address it has in System.map (static symbols may
/// repeat).
#[derive(Debug, Default, Clone)]
pub struct SystemMap {
    map: HashMap<String, Vec<u64>>,
}

impl SystemMap {
    /// Parses System.map text: `ADDRESS TYPE NAME` per line; malformed lines
    /// are skipped.
    pub fn parse(text: &str) -> SystemMap {
        let mut map: HashMap<String, Vec<u64>> = HashMap::new();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(addr), Some(_ty), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            let v = map.entry(name.to_string()).or_default();
            if !v.contains(&addr) {
                v.push(addr);
            }
        }
        SystemMap { map }
    }

    /// Reads and parses a System.map file.
    pub fn load(path: &Path) -> Result<SystemMap> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{}: cannot read System.map", path.display()))?;
        Ok(SystemMap::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// The System.map of `$KSPLICE_CONFIG_DIR`, or an empty map when that
    /// variable is unset (no candidates are then recorded).
    pub fn from_env() -> Result<SystemMap> {
        match config_path() {
            Some(p) => SystemMap::load(&p),
            None => Ok(SystemMap::default()),
        }
    }

    /// All addresses of `name`.
    pub fn get(&self, name: &str) -> &[u64] {
        self.map.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// `$KSPLICE_CONFIG_DIR/System.map`, if the variable is set.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("KSPLICE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| Path::new(&d).join("System.map"))
}

/// Scans a System.map for the first line naming `symbol` and returns its
/// address field as written.
pub fn lookup_text(text: &str, symbol: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        let addr = it.next()?;
        let _ty = it.next()?;
        let name = it.next()?;
        (name == symbol).then(|| addr.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_collects_duplicates() {
        let m = SystemMap::parse(
            "ffffffff81000000 T _text\nffffffff81000010 t helper\nffffffff81000020 t helper\nbad line\n",
        );
        assert_eq!(m.get("_text"), &[0xffff_ffff_8100_0000]);
        assert_eq!(m.get("helper").len(), 2);
        assert!(m.get("missing").is_empty());
    }

    #[test]
    fn lookup_returns_text_address() {
        let t = "0000000000000000 A foo\nffffffff81000010 T bar\n";
        assert_eq!(lookup_text(t, "bar").as_deref(), Some("ffffffff81000010"));
        assert_eq!(lookup_text(t, "baz"), None);
    }
}
