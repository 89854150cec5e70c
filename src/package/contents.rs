//! The `contents` file: the update's modules, in loading order.

use super::error::UpdateError;
use super::names::{change_modules, core_module, is_module_name, module_name, target_part};

/// One changed target: its new-code and old-code modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `vmlinux` or a module name.
    pub target: String,
    /// The new-code module's name.
    pub new_module: String,
    /// The new-code module's file (in the update directory).
    pub new_file: String,
    /// The old-code module's name.
    pub old_module: String,
    /// The old-code module's file.
    pub old_file: String,
}

/// A module of the update that is not a change's: the core, the labels module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// Its name, `ksplice_<kid>` (the core) or `ksplice_<kid>_labels`.
    pub module: String,
    /// Its file.
    pub file: String,
}

/// The parsed `contents` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The core module.
    pub core: Core,
    /// The labels modules, loaded after `prepare` (the new code's jump
    /// labels, one module per change); updates made without them have none.
    pub labels: Vec<Core>,
    /// The changes, in file order (the order of loading).
    pub changes: Vec<Change>,
}

fn check_file_name(line: usize, name: &str) -> Result<(), UpdateError> {
    let ok = name.len() > 3
        && name.ends_with(".ko")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(UpdateError::BadFileName {
            line,
            name: name.to_string(),
        })
    }
}

impl Contents {
    /// Parses `contents` of update `kid`: `core MODULE FILE` (exactly once)
    /// and `change TARGET NEW_MODULE NEW_FILE OLD_MODULE OLD_FILE` (at least
    /// once), and `labels MODULE FILE` (any number). Module names must be
    /// `ksplice_<kid>` (core) or start with `ksplice_<kid>_` (a labels
    /// module's also end with `_labels`). Blank lines are ignored.
    pub fn parse(text: &str, kid: &str) -> Result<Contents, UpdateError> {
        let mut core: Option<Core> = None;
        let mut labels: Vec<Core> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        let own_prefix = format!("ksplice_{kid}_");
        let module = |line: usize, name: &str, core: bool| -> Result<String, UpdateError> {
            if !is_module_name(name) {
                return Err(UpdateError::BadModuleName {
                    line,
                    name: name.to_string(),
                });
            }
            let own = if core {
                name == format!("ksplice_{kid}")
            } else {
                name.starts_with(&own_prefix) && name.len() > own_prefix.len()
            };
            if !own {
                return Err(UpdateError::ForeignModule {
                    line,
                    name: name.to_string(),
                    kid: kid.to_string(),
                });
            }
            Ok(name.to_string())
        };
        for (i, l) in text.lines().enumerate() {
            let line = i + 1;
            let words: Vec<&str> = l.split_whitespace().collect();
            let Some((&kind, args)) = words.split_first() else {
                continue;
            };
            let expect = |n: usize| {
                if args.len() == n {
                    Ok(())
                } else {
                    Err(UpdateError::BadFields {
                        line,
                        kind: kind.to_string(),
                        expected: n,
                        found: args.len(),
                    })
                }
            };
            match kind {
                "core" => {
                    expect(2)?;
                    if core.is_some() {
                        return Err(UpdateError::MultipleCores { line });
                    }
                    check_file_name(line, args[1])?;
                    core = Some(Core {
                        module: module(line, args[0], true)?,
                        file: args[1].to_string(),
                    });
                }
                "labels" => {
                    expect(2)?;
                    check_file_name(line, args[1])?;
                    let name = module(line, args[0], false)?;
                    if !name.ends_with("_labels") || labels.iter().any(|l| l.module == name) {
                        return Err(UpdateError::BadLabels { line, name });
                    }
                    labels.push(Core {
                        module: name,
                        file: args[1].to_string(),
                    });
                }
                "change" => {
                    expect(5)?;
                    let target = args[0];
                    if target.is_empty()
                        || !target
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        return Err(UpdateError::BadTarget {
                            line,
                            target: target.to_string(),
                        });
                    }
                    if changes
                        .iter()
                        .any(|c| module_name(&c.target) == module_name(target))
                    {
                        return Err(UpdateError::DuplicateTarget {
                            line,
                            target: target.to_string(),
                        });
                    }
                    check_file_name(line, args[2])?;
                    check_file_name(line, args[4])?;
                    changes.push(Change {
                        target: target.to_string(),
                        new_module: module(line, args[1], false)?,
                        new_file: args[2].to_string(),
                        old_module: module(line, args[3], false)?,
                        old_file: args[4].to_string(),
                    });
                }
                other => {
                    return Err(UpdateError::UnknownLine {
                        line,
                        kind: other.to_string(),
                    });
                }
            }
        }
        let core = core.ok_or(UpdateError::NoCore)?;
        if changes.is_empty() {
            return Err(UpdateError::NoChanges);
        }
        Ok(Contents {
            core,
            labels,
            changes,
        })
    }

    /// The contents of update `kid` changing `targets` (in loading order),
    /// with the module names of [`super::names`].
    pub fn for_targets<S: AsRef<str>>(kid: &str, targets: &[S]) -> Contents {
        let (module, file) = core_module(kid);
        let changes = targets
            .iter()
            .map(|t| {
                let [(new_module, new_file), (old_module, old_file)] =
                    change_modules(kid, t.as_ref());
                Change {
                    target: target_part(t.as_ref()),
                    new_module,
                    new_file,
                    old_module,
                    old_file,
                }
            })
            .collect();
        Contents {
            core: Core { module, file },
            labels: Vec::new(),
            changes,
        }
    }

    /// The text of the `contents` file: one `change` line per target, then
    /// the `core` line ([`Contents::parse`] reads it back).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&format!(
                "change {} {} {} {} {}\n",
                c.target, c.new_module, c.new_file, c.old_module, c.old_file
            ));
        }
        out.push_str(&format!("core {} {}\n", self.core.module, self.core.file));
        for l in &self.labels {
            out.push_str(&format!("labels {} {}\n", l.module, l.file));
        }
        out
    }

    /// Every module file with the line that names it.
    pub(crate) fn files(&self, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first() {
                Some(&"core" | &"labels") if w.len() == 3 => out.push((i + 1, w[2].to_string())),
                Some(&"change") if w.len() == 6 => {
                    out.push((i + 1, w[3].to_string()));
                    out.push((i + 1, w[5].to_string()));
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KID: &str = "abc";

    fn good() -> String {
        "change vmlinux ksplice_abc_vmlinux_new ksplice-abc_vmlinux-new.ko ksplice_abc_vmlinux_old ksplice-abc_vmlinux-old.ko\n\
         change kobject_example ksplice_abc_kobject_example_new ksplice-abc_kobject_example-new.ko ksplice_abc_kobject_example_old ksplice-abc_kobject_example-old.ko\n\
         core ksplice_abc ksplice-abc.ko\n"
            .to_string()
    }

    #[test]
    fn parses_contents() {
        let c = Contents::parse(&good(), KID).unwrap();
        assert_eq!(c.core.module, "ksplice_abc");
        assert_eq!(c.core.file, "ksplice-abc.ko");
        assert_eq!(c.changes.len(), 2);
        assert_eq!(c.changes[1].target, "kobject_example");
        assert_eq!(c.changes[0].old_file, "ksplice-abc_vmlinux-old.ko");
        assert_eq!(c.files(&good()).len(), 5);
        let made = Contents::for_targets(KID, &["vmlinux", "kobject-example"]);
        assert_eq!(made.render(), good());
        assert_eq!(Contents::parse(&made.render(), KID).unwrap(), made);
        let text = format!(
            "{}labels ksplice_abc_vmlinux_labels ksplice-abc_vmlinux-labels.ko\n",
            good()
        );
        let with = Contents::parse(&text, KID).unwrap();
        assert_eq!(with.labels[0].file, "ksplice-abc_vmlinux-labels.ko");
        assert_eq!(with.render(), text);
        assert_eq!(with.files(&text).len(), 6);
    }

    #[test]
    fn refuses_bad_contents() {
        use UpdateError::*;
        let p = |t: &str| Contents::parse(t, KID).unwrap_err();
        assert!(matches!(p("frobnicate x\n"), UnknownLine { line: 1, .. }));
        assert!(matches!(
            p("core ksplice_abc\n"),
            BadFields { found: 1, .. }
        ));
        assert_eq!(p("core ksplice_abc a.ko\n"), NoChanges);
        assert_eq!(
            p("change vmlinux ksplice_abc_n n.ko ksplice_abc_o o.ko\n"),
            NoCore
        );
        assert!(matches!(
            p("core ksplice_abc a.ko\ncore ksplice_abc a.ko\n"),
            MultipleCores { line: 2 }
        ));
        assert!(matches!(p("core ksplice-abc a.ko\n"), BadModuleName { .. }));
        assert!(matches!(
            p("labels ksplice_abc_x_labels l.ko\nlabels ksplice_abc_x_labels l.ko\n"),
            BadLabels { line: 2, .. }
        ));
        assert!(matches!(
            p("labels ksplice_abc_other l.ko\n"),
            BadLabels { .. }
        ));
        assert!(matches!(
            p("labels ksplice_xyz_labels l.ko\n"),
            ForeignModule { .. }
        ));
        assert!(matches!(p("core ksplice_xyz a.ko\n"), ForeignModule { .. }));
        assert!(matches!(
            p("core ksplice_abc ../a.ko\n"),
            BadFileName { .. }
        ));
        assert!(matches!(p("core ksplice_abc a.o\n"), BadFileName { .. }));
        assert!(matches!(
            p("core ksplice_abc a.ko\nchange vm/linux ksplice_abc_n n.ko ksplice_abc_o o.ko\n"),
            BadTarget { .. }
        ));
        assert!(matches!(
            p(
                "core ksplice_abc a.ko\nchange vmlinux ksplice_abc_n n.ko ksplice_abc_o o.ko\nchange vmlinux ksplice_abc_n2 n.ko ksplice_abc_o2 o.ko\n"
            ),
            DuplicateTarget { line: 3, .. }
        ));
        assert!(matches!(
            p("core ksplice_abc a.ko\nchange vmlinux ksplice_abc_ n.ko ksplice_abc_o o.ko\n"),
            ForeignModule { .. }
        ));
    }
}
