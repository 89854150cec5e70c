//! Module names and the rules they follow.

/// True when `s` is a valid module name (`[A-Za-z0-9_]+`).
pub fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The kernel's name for a module named in a file or by a user (`-` is `_`).
pub fn module_name(s: &str) -> String {
    s.replace('-', "_")
}

/// The name part of a target in module names: `-` and `,` become `_`
/// (kmodsrc/Makefile's `name-fix` does the same).
pub fn target_part(target: &str) -> String {
    target.replace(['-', ','], "_")
}

/// The core module of update `kid`: (module name, file name).
pub fn core_module(kid: &str) -> (String, String) {
    (format!("ksplice_{kid}"), format!("ksplice-{kid}.ko"))
}

/// The labels module of update `kid` for one changed target
/// (kmodsrc/labels.c): (module name, file name).
pub fn labels_module(kid: &str, target: &str) -> (String, String) {
    let mid = format!("{kid}_{}", target_part(target));
    (
        format!("ksplice_{mid}_labels"),
        format!("ksplice-{mid}-labels.ko"),
    )
}

/// The modules of update `kid` for one changed target, as kmodsrc/Makefile
/// names them: the new-code module and the old-code module, each as
/// (module name, file name).
pub fn change_modules(kid: &str, target: &str) -> [(String, String); 2] {
    let mid = format!("{kid}_{}", target_part(target));
    [
        (
            format!("ksplice_{mid}_new"),
            format!("ksplice-{mid}-new.ko"),
        ),
        (
            format!("ksplice_{mid}_old"),
            format!("ksplice-{mid}-old.ko"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kmodsrc() {
        assert_eq!(core_module("abc").1, "ksplice-abc.ko");
        let [new, old] = change_modules("abc", "kobject-example");
        assert_eq!(new.0, "ksplice_abc_kobject_example_new");
        assert_eq!(old.1, "ksplice-abc_kobject_example-old.ko");
        assert!(is_module_name(&new.0) && is_module_name(&core_module("x").0));
        assert_eq!(
            module_name(&new.1.replace(".ko", "")),
            "ksplice_abc_kobject_example_new"
        );
    }
}
