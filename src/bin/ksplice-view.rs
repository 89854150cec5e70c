//! `ksplice-view`: list the Ksplice updates applied to the running kernel,
//! or describe one update (in the kernel, or on disk).

use anyhow::{Result, bail};
use clap::Parser;
use ksplice::package::Update;
use ksplice::update::{
    self, CommonOpts, EXIT_OK, Env, Kernel, Record, Stage, Ui, short_description,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// View Ksplice updates: without arguments, list the updates applied to
/// the running kernel (id, description, changed functions); with --id, one
/// of them; with an update file, that update (the kernel is not touched).
#[derive(Debug, Parser)]
#[command(
    name = "ksplice-view",
    version,
    after_help = "Exit status: 0 success, 1 error.\n\nEnvironment (for testing): KSPLICE_SYSFS (/sys), KSPLICE_STATE (/var/run/ksplice).",
    mut_arg("raw_errors", |a| a.help("Machine-readable errors on stderr (OTHER and a message)")),
    mut_arg("verbose", |a| a.help("Also show the source patch")),
    mut_arg("quiet", |a| a.help("Only the update ids"))
)]
struct Cli {
    /// An update tarball (or unpacked update directory) to describe.
    #[arg(value_name = "UPDATE", conflicts_with_all = ["id", "file"])]
    update: Option<PathBuf>,
    /// Describe the update KSPLICE_ID of the running kernel.
    #[arg(long, value_name = "KSPLICE_ID", conflicts_with = "file")]
    id: Option<String>,
    /// Describe an update on disk (same as giving UPDATE).
    #[arg(long, value_name = "UPDATE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonOpts,
}

fn main() -> ExitCode {
    update::tool_main("ksplice-view", |c: &Cli| &c.common, None, view)
}

fn view(cli: &Cli, ui: &Ui) -> Result<u8> {
    if let Some(f) = cli.update.as_ref().or(cli.file.as_ref()) {
        view_file(f, ui)?;
    } else {
        let k = Kernel {
            env: Env::from_env()?,
            ui: ui.clone(),
        };
        match &cli.id {
            Some(id) => view_id(&k, id)?,
            None => view_list(&k)?,
        }
    }
    Ok(EXIT_OK)
}

fn print_functions(patched: Option<&[(String, String)]>) {
    for (object, function) in patched.unwrap_or_default() {
        println!("  {function} ({object})");
    }
}

fn print_patch(ui: &Ui, patch: Option<&str>) {
    if ui.verbose >= 1
        && let Some(p) = patch.filter(|p| !p.is_empty())
    {
        println!("Source patch of the update:");
        print!("{p}");
        if !p.ends_with('\n') {
            println!();
        }
    }
}

fn view_list(k: &Kernel) -> Result<()> {
    for kid in k.updates()? {
        if k.stage(&kid)? != Some(Stage::Applied) {
            continue;
        }
        if k.ui.verbose < 0 {
            println!("{kid}");
            continue;
        }
        let rec = Record::load(&k.env.state, &kid).unwrap_or_default();
        println!("{kid}: {}", short_description(rec.description.as_deref()));
        print_functions(rec.patched.as_deref());
    }
    Ok(())
}

fn view_id(k: &Kernel, id: &str) -> Result<()> {
    let kid = id
        .strip_prefix("ksplice-")
        .or_else(|| id.strip_prefix("ksplice_"))
        .unwrap_or(id);
    if !ksplice::package::names::is_module_name(kid) {
        bail!("{id}: not an update id");
    }
    let Some(stage) = k.stage(kid)? else {
        println!("Ksplice update {kid} is not present in the kernel.");
        return Ok(());
    };
    println!("Ksplice update {kid} is present in the kernel and is {stage}.");
    if k.ui.verbose < 0 {
        return Ok(());
    }
    let Some(rec) = Record::load(&k.env.state, kid) else {
        return Ok(());
    };
    println!(
        "Description: {}",
        short_description(rec.description.as_deref())
    );
    if let Some(p) = rec.patched.as_deref().filter(|p| !p.is_empty()) {
        println!("Changed functions:");
        print_functions(Some(p));
    }
    print_patch(&k.ui, rec.patch.as_deref());
    Ok(())
}

fn view_file(file: &std::path::Path, ui: &Ui) -> Result<()> {
    let u = Update::open(file)?;
    if ui.verbose < 0 {
        println!("{}", u.kid);
        return Ok(());
    }
    println!(
        "Ksplice update {}: {}",
        u.kid,
        short_description(u.description.as_deref())
    );
    println!(
        "Built for kernel {} ({})",
        u.utsname.release, u.utsname.version
    );
    match u.patched.as_deref() {
        Some(p) if !p.is_empty() => {
            println!("Changed functions:");
            print_functions(Some(p));
        }
        Some(_) => println!("Changed functions: none listed"),
        None => println!("Changed functions: not listed (update built without a patched file)"),
    }
    let patch = std::fs::read_to_string(u.file("patch")).ok();
    print_patch(ui, patch.as_deref());
    Ok(())
}
