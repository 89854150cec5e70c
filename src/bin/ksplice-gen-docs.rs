//! `ksplice-gen-docs`: writes the man pages and shell completions of the
//! Ksplice tools, generated from their command lines
//! ([`ksplice::cli::docs`]). install.sh runs it; it is not installed.

use clap::{Parser, Subcommand};
use ksplice::cli::docs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write the man pages or the shell completions of ksplice-create,
/// ksplice-apply, ksplice-undo, ksplice-view and ksplice-obj.
#[derive(Debug, Parser)]
#[command(name = "ksplice-gen-docs", version)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Write DIR/TOOL.1 for every tool (DIR is created if needed).
    Man {
        /// The directory, e.g. PREFIX/share/man/man1.
        dir: PathBuf,
    },
    /// Write DIR/bash/TOOL, DIR/zsh/_TOOL and DIR/fish/TOOL.fish for every
    /// tool.
    Completions {
        /// The directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let written = match &cli.what {
        What::Man { dir } => docs::write_man_pages(dir),
        What::Completions { dir } => docs::write_completions(dir),
    };
    match written {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ksplice-gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}
