//! Running the system tools the lab is made of (`ip`, `nft`, `sysctl`, the servers' admin tools),
//! turning failures into errors that quote the command and its stderr.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{LabError, Result};

/// Runs `program args…` and returns its stdout; a non-zero exit becomes [`LabError::Command`].
pub fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_input(program, args, None)
}

/// Like [`run`], feeding `input` on stdin.
pub fn run_with_input<I, S>(program: &str, args: I, input: Option<&str>) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    let line = describe(&cmd);
    tracing::trace!(command = %line, "run");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(LabError::io(format!("cannot start `{line}`")))?;
    if let Some(input) = input {
        // The pipe was requested just above, so it is present.
        let mut stdin = child.stdin.take().expect("stdin was piped");
        stdin
            .write_all(input.as_bytes())
            .map_err(LabError::io(format!("cannot feed `{line}`")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(LabError::io(format!("cannot wait for `{line}`")))?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside a network namespace (`ip netns exec NS …`).
pub fn run_in<I, S>(netns: &str, program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<std::ffi::OsString> =
        vec!["netns".into(), "exec".into(), netns.into(), program.into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    run("ip", all)
}

/// The command line as a user would type it, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether `program` is in one of the folders of `search_path` (a `PATH`-style list).
pub fn exists_in(program: &str, search_path: &OsStr) -> bool {
    std::env::split_paths(search_path).any(|dir| dir.join(program).is_file())
}
