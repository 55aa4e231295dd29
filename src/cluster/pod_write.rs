//! Writing a small file into a pod through exec, without stdin (a websocket exec's stdin EOF is
//! not passed on by every kubelet): `bash -c 'printf "%s" "$1" > "$2"' write-file CONTENT PATH`.
//! For files well below 128 KiB, the kernel's limit for one argument.

/// The script.
pub const SCRIPT: &str = "printf '%s' \"$1\" > \"$2\"";
/// `$0` of the script.
pub const NAME: &str = "write-file";
/// The largest content this writes (one argument: 128 KiB, less what the rest of the command
/// takes).
pub const MAX_BYTES: usize = 120 * 1024;

/// The exec command that writes `content` to `path`; `None` when it is too large.
pub fn command(path: &str, content: &str) -> Option<Vec<String>> {
    (content.len() <= MAX_BYTES).then(|| {
        ["bash", "-c", SCRIPT, NAME, content, path]
            .iter()
            .map(|s| s.to_string())
            .collect()
    })
}

/// `(path, content)` when `argv` is a command made by [`command`].
pub fn parse(argv: &[String]) -> Option<(&str, &str)> {
    match argv {
        [bash, c, script, name, content, path]
            if bash.rsplit('/').next() == Some("bash") && c == "-c" && script == SCRIPT && name == NAME =>
        {
            Some((path.as_str(), content.as_str()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_writes_the_content_verbatim_with_the_machines_bash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json").display().to_string();
        let content = "{\"a\": \"$HOME `x` \\\\ '\\n\"}\n%s %d";
        let argv = command(&path, content).unwrap();
        assert_eq!(parse(&argv), Some((path.as_str(), content)));
        let ok = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        assert!(command(&path, &"x".repeat(MAX_BYTES + 1)).is_none());
    }
}
