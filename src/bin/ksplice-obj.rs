//! `ksplice-obj`: the per-object step of a Ksplice build.

use ksplice::obj::cli::{Cmd, usage};
use ksplice::obj::protocol;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match ksplice::cli::obj::parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            println!("{}", usage());
            let msg = e.to_string();
            if let Some(first) = msg.lines().next() {
                eprintln!("ksplice-obj: {}", first.trim_start_matches("error: "));
            }
            return ExitCode::from(1);
        }
    };
    if let Err(e) = protocol::select_kernel() {
        eprintln!("ksplice-obj: {e:#}");
        return ExitCode::from(1);
    }
    let res = match &cli.command {
        Cmd::Snap { marker } => protocol::snap(marker),
        Cmd::Diff { marker } => protocol::diff(marker),
        Cmd::OldCode { out } => protocol::old_code(out),
        Cmd::Combine { out, inputs } => protocol::combine(out, inputs),
        Cmd::Finalize { input, out, target } => protocol::finalize(input, out, target),
        Cmd::Rmsyms { input, out } => protocol::rmsyms(input, out),
        Cmd::SystemMapLookup { symbol } => protocol::system_map_lookup(symbol).map(|addr| {
            if let Some(a) = addr {
                print!("{a}");
            }
        }),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksplice-obj: {e:#}");
            ExitCode::from(1)
        }
    }
}
