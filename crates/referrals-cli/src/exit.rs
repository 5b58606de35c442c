//! How `referrals` ends: its exit statuses, the errors that choose them, and what it writes on
//! standard error then. A script decides on the status alone; with `--quiet`, an outcome that
//! has a status of its own (3, 5) writes nothing.

use std::io::{self, Write};
use std::process::ExitCode;

/// The exit statuses, at the end of every command's help and in the README.
pub const STATUSES: &str = "\
Exit status:
  0  done
  1  failed: the service, the network, a file (the error says why)
  2  a wrong command line
  3  the referral changed since it was read (412): nothing was changed; read it again
  4  `drift` found the service drifting from the document
  5  `webhooks register`: a registration exists already; `webhooks update` replaces it
With --quiet, statuses 3 and 5 write nothing on standard error.";

/// A wrong command line, found after clap parsed it: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// An error that was already written to standard error: exit status 1, nothing more said.
#[derive(Debug, thiserror::Error)]
#[error("reported")]
pub struct Reported;

/// What a command was asked to create exists already (a 409): exit status 5. The text says
/// what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Exists(pub String);

/// `command` and every command under it, with [`STATUSES`] after their help.
pub fn with_statuses(command: clap::Command) -> clap::Command {
    let help = match command.get_after_help() {
        Some(help) => format!("{help}\n\n{STATUSES}"),
        None => STATUSES.to_owned(),
    };
    let names: Vec<String> = (command.get_subcommands())
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let command = command.after_help(help);
    names.iter().fold(command, |command, name| {
        command.mut_subcommand(name, with_statuses)
    })
}

/// The exit status of `error`, written to standard error first (not with `quiet` when the
/// status says it all).
pub fn status(error: &anyhow::Error, quiet: bool) -> ExitCode {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        // The reader went away (`referrals list | head`): nothing is wrong.
        return ExitCode::SUCCESS;
    }
    if error.downcast_ref::<Reported>().is_some() {
        return ExitCode::FAILURE;
    }
    if error.downcast_ref::<crate::drift::Drifted>().is_some() {
        return ExitCode::from(crate::drift::DRIFTED);
    }
    let code = code(error);
    if !(quiet && matches!(code, 3 | 5)) {
        let _ = writeln!(io::stderr().lock(), "error: {}", message(error));
    }
    ExitCode::from(code)
}

/// The status of an error that is written out: 2, 3, 5 or 1.
fn code(error: &anyhow::Error) -> u8 {
    let changed_meanwhile = error.chain().any(|cause| {
        cause
            .downcast_ref::<referrals_client::Error>()
            .is_some_and(referrals_client::Error::is_precondition_failed)
    });
    if error.downcast_ref::<Usage>().is_some() {
        2
    } else if changed_meanwhile {
        3
    } else if error.downcast_ref::<Exists>().is_some() {
        5
    } else {
        1
    }
}

/// The chain of causes, up to an error of the client, whose text has its own causes.
fn message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        if cause.downcast_ref::<referrals_client::Error>().is_some() {
            break;
        }
    }
    message
}
