//! `ksplice-kernel-utsname OFFSETS.O`: prints the release and the version
//! (`uname -r`, `uname -v`) of the kernel an update is built for, one per
//! line, as the update's `utsname` holds them. OFFSETS.O is kmodsrc's
//! `offsets.o`, built against the kernel with its strings in the section
//! `.ksplice_utsname`. The Perl ksplice-create runs it from its
//! LIBEXECDIR. `--version` (`-V`) alone prints its version.

use anyhow::{Context, Result, bail};
use ksplice::engine::elf::Object;
use std::io::Write;
use std::process::ExitCode;

/// The section of offsets.o holding `RELEASE\nVERSION\n`.
const SECTION: &str = ".ksplice_utsname";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if ksplice::cli::asks_version(&args) {
        println!("{}", ksplice::cli::version_line("ksplice-kernel-utsname"));
        return ExitCode::SUCCESS;
    }
    let [path] = args.as_slice() else {
        eprintln!("usage: ksplice-kernel-utsname OFFSETS.O");
        return ExitCode::from(2);
    };
    match utsname(path) {
        Ok(text) => {
            if std::io::stdout().write_all(text.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ksplice-kernel-utsname: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The text of `path`'s `.ksplice_utsname`, checked to be two lines.
fn utsname(path: &str) -> Result<String> {
    let data = std::fs::read(path).with_context(|| format!("{path}: cannot read"))?;
    let obj = Object::parse(&data).with_context(|| format!("{path}: not an ELF object"))?;
    let Some(sec) = obj.sections.iter().find(|s| s.name == SECTION) else {
        bail!("{path}: no {SECTION} section (not kmodsrc's offsets.o?)");
    };
    let end = sec
        .data
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(sec.data.len());
    let text = String::from_utf8_lossy(&sec.data[..end]).into_owned();
    if text.lines().count() != 2 || !text.ends_with('\n') || text.starts_with('\n') {
        bail!("{path}: {SECTION} is not RELEASE and VERSION lines: {text:?}");
    }
    Ok(text)
}
