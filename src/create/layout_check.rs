//! The structure layout check: the structs and unions the changed objects
//! use, before and after the patch, from the DWARF of a private debug build
//! of each object ([`crate::engine::layout`]). A changed layout refuses the
//! patch unless `--allow-layout-change`. The same debug builds give the
//! types of the writable data the patch rewrites in place, which
//! [`rewrite_check`] accepts or refuses.

use super::build::Stages;
use super::context::Ctx;
use super::rewrite_check;
use crate::engine::layout::{self, LayoutChange};
use crate::engine::report::Report;
use crate::util::interrupt::Interrupted;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stage: compiles each changed object with debug information after and
/// before the patch (the sources are restored afterwards, on every path)
/// and compares their layouts.
pub(super) fn check(ctx: &mut Ctx) -> Result<()> {
    let changed = changed_objects(&ctx.objtree, &ctx.reports);
    let checked = compile_and_compare(ctx, &changed);
    ctx.guard.restore()?;
    let (found, types) = match checked {
        Ok(found) => found,
        Err(e) if ctx.o.allow_layout_change && e.downcast_ref::<Interrupted>().is_none() => {
            eprintln!(
                "ksplice-create: warning: structure layouts not checked (--allow-layout-change): {e:#}"
            );
            (Vec::new(), BTreeMap::new())
        }
        Err(e) => return Err(e),
    };
    refuse_rewrites(ctx, &types)?;
    if !found.is_empty() {
        if !ctx.o.allow_layout_change {
            let lines: Vec<String> = found
                .iter()
                .map(|(obj, c)| format!("{obj}: {c}; {LAYOUT_ADVICE}"))
                .collect();
            bail!("{}", lines.join("\nksplice-create: "));
        }
        for (obj, c) in &found {
            eprintln!(
                "ksplice-create: warning: {obj}: {c}; existing objects keep the old layout (--allow-layout-change)"
            );
        }
    }
    if ctx.o.verbose >= 1 {
        println!(
            "      {} changed object(s), {} layout change(s)",
            changed.len(),
            found.len()
        );
    }
    Ok(())
}

/// Refuses the patch when a report rewrites writable data in place that
/// [`rewrite_check`] does not accept (`types`: each changed object's
/// variables and their types, before the patch).
fn refuse_rewrites(ctx: &Ctx, types: &BTreeMap<String, BTreeMap<String, String>>) -> Result<()> {
    let mut refused = Vec::new();
    for (obj, json) in &ctx.reports {
        let Ok(report) = Report::from_json(json) else {
            continue;
        };
        let rel = obj.strip_prefix(&ctx.objtree).unwrap_or(obj);
        let t = types.get(&rel.display().to_string());
        refused.extend(rewrite_check::refusals(&report, t));
    }
    if let Some(why) = super::build::refusing(&refused) {
        bail!("{why}");
    }
    Ok(())
}

/// Per changed object: the struct layout changes, and its variables' types.
type Checked = (
    Vec<(String, LayoutChange)>,
    BTreeMap<String, BTreeMap<String, String>>,
);

/// The debug builds of `changed` with the patch, then without it (with
/// `--series` the patched sources are parked meanwhile), and what they
/// differ in.
fn compile_and_compare(ctx: &mut Ctx, changed: &[String]) -> Result<Checked> {
    // ksplice-cc gives every compile the directory of <ksplice-patch.h>.
    let patch_include = ctx.data.join("kmodsrc/include");
    let extra: Vec<String> = if patch_include.is_dir() {
        vec![format!("-I{}", patch_include.display())]
    } else {
        Vec::new()
    };
    let check = LayoutCheck::new(&ctx.objtree, changed, &ctx.tmp.join("layout"), extra)?;
    check.compile(&ctx.stages, Side::After, ctx.jobs)?;
    if ctx.o.series {
        ctx.guard.park_patched()?;
        check.compile(&ctx.stages, Side::Before, ctx.jobs)?;
        ctx.guard.restore()?;
    } else {
        ctx.guard.restore()?;
        check.compile(&ctx.stages, Side::Before, ctx.jobs)?;
    }
    Ok((check.compare()?, check.variable_types()?))
}

/// The objects this run changed (marker `1`), relative to the objtree.
fn changed_objects(objtree: &Path, reports: &[(PathBuf, String)]) -> Vec<String> {
    let mut out: Vec<String> = reports
        .iter()
        .filter(|(obj, _)| {
            let mut m = obj.as_os_str().to_owned();
            m.push(".KSPLICE");
            fs::read_to_string(PathBuf::from(m)).is_ok_and(|t| t.trim() == "1")
        })
        .map(|(obj, _)| {
            obj.strip_prefix(objtree)
                .unwrap_or(obj)
                .display()
                .to_string()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Which tree a debug build of the layout check is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The tree as found.
    Before,
    /// The patched tree.
    After,
}

/// The layout check of the changed objects: each is compiled twice with
/// the command Kbuild used plus DWARF, into a private directory, and the
/// struct and union layouts of the two builds are compared
/// ([`crate::engine::layout`]).
struct LayoutCheck {
    objtree: PathBuf,
    dir: PathBuf,
    /// (object relative to the objtree, its `.cmd` file's text).
    objects: Vec<(String, String)>,
    /// Arguments added at the end of every compile (what ksplice-cc adds).
    extra: Vec<String>,
}

/// The end of a layout refusal: what to do instead.
const LAYOUT_ADVICE: &str = "existing objects keep the old layout: carry new state in shadow data (docs/PATCH-AUTHORS.md) or pass --allow-layout-change";

impl LayoutCheck {
    fn new(
        objtree: &Path,
        objects: &[String],
        dir: &Path,
        extra: Vec<String>,
    ) -> Result<LayoutCheck> {
        fs::create_dir_all(dir)?;
        let mut out = Vec::new();
        for obj in objects {
            let path = Path::new(obj);
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let cmd_file = path
                .parent()
                .map(|p| objtree.join(p))
                .unwrap_or_else(|| objtree.to_path_buf())
                .join(format!(".{name}.cmd"));
            let text = fs::read_to_string(&cmd_file).with_context(|| {
                format!(
                    "{obj}: cannot check structure layouts: {}: cannot read the build command",
                    cmd_file.display()
                )
            })?;
            out.push((obj.clone(), text));
        }
        let check = LayoutCheck {
            objtree: objtree.to_path_buf(),
            dir: dir.to_path_buf(),
            objects: out,
            extra,
        };
        for i in 0..check.objects.len() {
            check.command(i, Side::After)?;
        }
        Ok(check)
    }

    /// The debug compile of object `i`.
    fn command(&self, i: usize, side: Side) -> Result<Command> {
        let (obj, text) = &self.objects[i];
        let out = self.output(i, side).display().to_string();
        let words = layout::debug_compile_command(text, obj, &out).map_err(|e| {
            anyhow!(
                "{obj}: cannot check structure layouts: the build command in its .cmd file: {e}"
            )
        })?;
        let mut c = Command::new(&words[0]);
        c.args(&words[1..])
            .args(&self.extra)
            .current_dir(&self.objtree);
        Ok(c)
    }

    fn output(&self, i: usize, side: Side) -> PathBuf {
        self.dir.join(format!(
            "{i}.{}.o",
            if side == Side::Before {
                "before"
            } else {
                "after"
            }
        ))
    }

    /// Compiles every object of the tree as it is now.
    fn compile(&self, stages: &Stages, side: Side, jobs: usize) -> Result<()> {
        let cmds = (0..self.objects.len())
            .map(|i| self.command(i, side))
            .collect::<Result<Vec<_>>>()?;
        let ok = stages.run_all(cmds, jobs)?;
        if let Some(i) = ok.iter().position(|ok| !ok) {
            bail!(
                "{}: compiling {} the patch with debug information (for the structure layout check) failed:\n{}",
                self.objects[i].0,
                if side == Side::Before {
                    "without"
                } else {
                    "with"
                },
                stages.tail(20)
            );
        }
        Ok(())
    }

    /// The variables of each object before the patch, with their types.
    fn variable_types(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        let mut out = BTreeMap::new();
        for (i, (obj, _)) in self.objects.iter().enumerate() {
            let p = self.output(i, Side::Before);
            let data = fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))?;
            match layout::variable_types(&data) {
                Ok(t) => {
                    out.insert(obj.clone(), t);
                }
                Err(layout::LayoutError::NoDebugInfo) => {}
                Err(e) => bail!("{obj}: the debug build without the patch: {e}"),
            }
        }
        Ok(out)
    }

    /// Each struct or union whose layout the patch changes, with its object.
    fn compare(&self) -> Result<Vec<(String, LayoutChange)>> {
        let mut found = Vec::new();
        for (i, (obj, _)) in self.objects.iter().enumerate() {
            let read = |side| -> Result<Vec<layout::Layout>> {
                let p = self.output(i, side);
                let data = fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))?;
                match layout::layouts_of_object(&data) {
                    // An assembler source has no types.
                    Err(layout::LayoutError::NoDebugInfo) => Ok(Vec::new()),
                    r => r.map_err(|e| {
                        anyhow!(
                            "{obj}: the debug build {} the patch: {e}",
                            if side == Side::Before {
                                "without"
                            } else {
                                "with"
                            }
                        )
                    }),
                }
            };
            let (before, after) = (read(Side::Before)?, read(Side::After)?);
            for c in layout::compare(&before, &after) {
                found.push((obj.clone(), c));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::scratch;

    #[test]
    fn changed_objects_are_those_marked_changed() {
        let d = scratch("changed");
        fs::create_dir_all(d.join("fs/proc")).unwrap();
        fs::write(d.join("fs/proc/a.o.KSPLICE"), "1\n").unwrap();
        fs::write(d.join("fs/proc/b.o.KSPLICE"), "").unwrap();
        let reports = vec![
            (d.join("fs/proc/b.o"), String::new()),
            (d.join("fs/proc/a.o"), String::new()),
            (d.join("fs/proc/c.o"), String::new()),
        ];
        assert_eq!(changed_objects(&d, &reports), ["fs/proc/a.o"]);
        let _ = fs::remove_dir_all(&d);
    }
}
