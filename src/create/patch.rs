//! The patch: read from `--patch`, made by `git diff` (`--git`) or from
//! the `FOO<ext>` files of the tree (`--diffext`), and applied with patch(1)
//! after backing up every file it names (the [`SourceGuard`]).
//!
//! [`SourceGuard`]: super::tree::SourceGuard

use super::context::Ctx;
use super::tree::find_files;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Stage: applies the patch, keeping backups; the guard puts everything
/// back. The patch (made by `git diff` or `diff -u` when it is not a file)
/// is kept as the run's `patch` file.
pub(super) fn apply(ctx: &mut Ctx) -> Result<()> {
    let o = ctx.o;
    if let Some(p) = &o.patch {
        fs::copy(p, &ctx.patch_file)
            .with_context(|| format!("{}: cannot read the patch", p.display()))?;
    } else if let Some(rev) = &o.git {
        git_diff(ctx, rev)?;
    }
    if let Some(ext) = &o.diffext {
        apply_diffext(ctx, ext)
    } else {
        apply_patch(ctx)
    }
}

/// Writes the changes from the tree's HEAD to `rev` as the patch.
fn git_diff(ctx: &Ctx, rev: &str) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(&ctx.tree)
        .args(["diff", "HEAD"])
        .arg(rev)
        .arg("--")
        .output()?;
    if !out.status.success() {
        bail!(
            "git diff HEAD {rev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fs::write(&ctx.patch_file, &out.stdout)?;
    Ok(())
}

/// `--diffext`: each `FOO<ext>` of the tree replaces `FOO` (backed up);
/// the patch is their `diff -u`.
fn apply_diffext(ctx: &mut Ctx, ext: &str) -> Result<()> {
    let tree = &ctx.tree;
    let mut text = String::new();
    for new in find_files(tree, ext)? {
        let orig = PathBuf::from(new.to_string_lossy().strip_suffix(ext).unwrap_or_default());
        let out = Command::new("diff")
            .arg("-u")
            .arg("--")
            .arg(&orig)
            .arg(&new)
            .current_dir(tree)
            .output()?;
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        ctx.guard.back_up(&tree.join(&orig))?;
        fs::copy(tree.join(&new), tree.join(&orig))?;
    }
    fs::write(&ctx.patch_file, text)?;
    Ok(())
}

/// Backs up every file the patch names, then applies it with patch(1)
/// (`--patch-opt`, default `-p1`).
fn apply_patch(ctx: &mut Ctx) -> Result<()> {
    let patch_opt = if ctx.o.patch_opt.is_empty() {
        vec!["-p1".to_string()]
    } else {
        ctx.o.patch_opt.clone()
    };
    let text = fs::read_to_string(&ctx.patch_file).context("the patch is not text")?;
    let files = patched_files(&text, strip_level(&patch_opt));
    if files.is_empty() {
        bail!("the patch changes no file");
    }
    for f in &files {
        if f.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            || f.is_absolute()
        {
            bail!("the patch names {}, outside the tree", f.display());
        }
        ctx.guard.back_up(&ctx.tree.join(f))?;
    }
    let out = Command::new("patch")
        .args(&patch_opt)
        .args([
            "--no-backup-if-mismatch",
            "--reject-file=-",
            "--forward",
            "--batch",
            "-i",
        ])
        .arg(&ctx.patch_file)
        .current_dir(&ctx.tree)
        .output()?;
    if !out.status.success() {
        bail!(
            "the patch does not apply:\n{}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

/// The files a unified diff changes, relative to the tree (`-pN` applied).
pub fn patched_files(patch: &str, strip: usize) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut minus: Option<String> = None;
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("--- ") {
            minus = Some(rest.split('\t').next().unwrap_or("").trim().to_string());
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let plus = rest.split('\t').next().unwrap_or("").trim().to_string();
            let name = if plus == "/dev/null" {
                minus.take().unwrap_or_default()
            } else {
                plus
            };
            let stripped: PathBuf = name.split('/').skip(strip).collect();
            if !stripped.as_os_str().is_empty() && !out.contains(&stripped) {
                out.push(stripped);
            }
        }
    }
    out
}

/// The `-p` level of the options given to patch(1) (default 1).
fn strip_level(opts: &[String]) -> usize {
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        if let Some(n) = o.strip_prefix("-p").and_then(|n| n.parse().ok()) {
            return n;
        }
        if o == "-p" {
            return it.next().and_then(|n| n.parse().ok()).unwrap_or(1);
        }
        if let Some(n) = o.strip_prefix("--strip=").and_then(|n| n.parse().ok()) {
            return n;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_patch() {
        let p = "diff -u a/fs/proc/uptime.c b/fs/proc/uptime.c\n--- a/fs/proc/uptime.c\t2023\n+++ b/fs/proc/uptime.c\t2023\n@@ -1 +1 @@\n\
                 --- /dev/null\n+++ b/fs/proc/new.c\n--- a/old.c\n+++ /dev/null\n";
        assert_eq!(
            patched_files(p, 1),
            vec![
                PathBuf::from("fs/proc/uptime.c"),
                PathBuf::from("fs/proc/new.c"),
                PathBuf::from("old.c")
            ]
        );
        assert_eq!(strip_level(&["-p0".into()]), 0);
        assert_eq!(strip_level(&[]), 1);
    }
}
