//! `changes --exec`: a command per change, run by `sh -c`, with the change and its referral as
//! JSON on standard input and the change's sequence number, kind and referral in the
//! environment. Exit status 0 handles the change; anything else is a failure, tried again.
//!
//! The command runs in a process group of its own, which is killed when the attempt is given
//! up (its timeout, a stop): a command's children go with it. On Linux the command is also
//! killed when `referrals` dies, however it dies, so that a process that takes the consumer
//! over never runs a change while an orphan of the last one still runs it.

use std::process::Stdio;

use referrals_mirror::Change;
use referrals_mirror::feed::Failure;
use tokio::io::AsyncWriteExt;

/// The variables that the command finds in its environment.
pub const SEQ: &str = "REFERRALS_CHANGE_SEQ";
pub const KIND: &str = "REFERRALS_CHANGE_KIND";
pub const ID: &str = "REFERRALS_REFERRAL_ID";

/// Kills a process group when dropped, unless it ended.
struct Group(Option<i32>);

impl Drop for Group {
    #[cfg(unix)]
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // SAFETY: killpg takes two integers and has no memory effect; a group that is gone
            // makes it fail with ESRCH, which is fine.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }

    #[cfg(not(unix))]
    fn drop(&mut self) {}
}

/// Runs `command` for `change`.
pub async fn run(command: &str, change: Change) -> Result<(), Failure> {
    let payload = change.payload().map_err(Failure::new)?;
    let mut process = tokio::process::Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .env(SEQ, change.seq.to_string())
        .env(KIND, change.kind.as_str())
        .env(ID, &change.id)
        .stdin(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    process.process_group(0);
    die_with_parent(&mut process);
    let mut child = process
        .spawn()
        .map_err(|error| Failure::new(format!("cannot run sh: {error}")))?;
    let mut group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes it: that is no failure.
        let _ = stdin.write_all(payload.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
    }
    let status = child
        .wait()
        .await
        .map_err(|error| Failure::new(format!("cannot wait for the command: {error}")))?;
    group.0 = None;
    if status.success() {
        return Ok(());
    }
    Err(Failure::new(match status.code() {
        Some(code) => format!("the command exited with status {code}"),
        None => "the command was killed by a signal".to_owned(),
    }))
}

/// On Linux, the command gets SIGKILL when the thread that started it (a worker of the
/// runtime, alive as long as `referrals`) ends.
#[cfg(target_os = "linux")]
fn die_with_parent(process: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, and only makes two system
    // calls that are async-signal-safe (prctl, getppid).
    unsafe {
        process.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl: do not run orphaned.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::other("referrals ended"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_process: &mut tokio::process::Command) {}
