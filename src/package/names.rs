//! Module names and the rules they follow.

/// True when `s` is a valid module name (`[A-Za-z0-9_]+`).
pub fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The kernel's name for a module named in a file or by a user (`-` is `_`).
pub fn module_name(s: &str) -> String {
    s.replace('-', "_")
}
