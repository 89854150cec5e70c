//! The update's kernel modules: the targets the diff build changed (each
//! `TARGET.mod.KSPLICE` it left in the run's kmodsrc directory), built with
//! Ksplice's kmodsrc (the core and a new-code and old-code module per
//! target) against the tree, as external modules (`M=`).

use super::context::Ctx;
use super::tree::copy_tree;
use anyhow::{Result, anyhow, bail};
use std::fs;
use std::process::Command;

/// The targets the diff build changed: (target, its path in the objtree),
/// sorted.
pub(super) fn changed_targets(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let mut targets: Vec<(String, String)> = Vec::new();
    for e in fs::read_dir(&ctx.kmodsrc)? {
        let p = e?.path();
        if let Some(name) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".mod.KSPLICE"))
        {
            let path = fs::read_to_string(&p)?.trim().to_string();
            targets.push((name.to_string(), path));
        }
    }
    targets.sort();
    Ok(targets)
}

/// Stage: copies kmodsrc next to what the diff build left and builds the
/// update's modules there.
pub(super) fn build(ctx: &mut Ctx) -> Result<()> {
    for e in fs::read_dir(ctx.data.join("kmodsrc"))? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_file() {
            fs::copy(e.path(), ctx.kmodsrc.join(e.file_name()))?;
        } else if ft.is_dir() {
            // include/: <ksplice-patch.h>, which the core includes too.
            copy_tree(&e.path(), &ctx.kmodsrc.join(e.file_name()))?;
        }
    }
    let map_printk = printk_address(ctx)?;
    let mut cmd = modules_cmd(ctx, &map_printk);
    if !ctx.stages.run(&mut cmd)?.success() {
        bail!(
            "building the update's modules failed:\n{}",
            ctx.stages.tail(30)
        );
    }
    Ok(())
}

/// The address of printk in the running kernel's System.map (the modules
/// find the kernel's KASLR offset from it).
fn printk_address(ctx: &Ctx) -> Result<String> {
    let map = fs::read_to_string(&ctx.system_map).unwrap_or_default();
    crate::engine::sysmap::lookup_text(&map, "_printk")
        .or_else(|| crate::engine::sysmap::lookup_text(&map, "printk"))
        .ok_or_else(|| {
            anyhow!(
                "{}: has no printk; is it the running kernel's System.map?",
                ctx.system_map.display()
            )
        })
}

/// `make -C TREE M=KMODSRC modules` for the changed targets.
fn modules_cmd(ctx: &Ctx, map_printk: &str) -> Command {
    let (tree, objtree, kid) = (&ctx.tree, &ctx.objtree, &ctx.kid);
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(tree);
    if objtree != tree {
        cmd.arg(format!("O={}", objtree.display()));
    }
    if let Some(j) = ctx.make.iter().find(|a| a.starts_with("-j")) {
        cmd.arg(j);
    }
    cmd.arg(format!("M={}", ctx.kmodsrc.display()))
        .arg(format!("KSPLICE_KID={kid}"))
        .arg(format!(
            "KSPLICE_MODULES={}",
            ctx.targets
                .iter()
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .arg(format!("map_printk={map_printk}"))
        .arg(format!("KSPLICE_OBJ={}", ctx.ksplice_obj.display()))
        .arg("modules")
        .env("KSPLICE_CONFIG_DIR", &ctx.config)
        .env("KSPLICE_KID", kid);
    if !objtree.join("Module.symvers").is_file() {
        cmd.arg("KBUILD_MODPOST_WARN=1");
    }
    cmd
}
