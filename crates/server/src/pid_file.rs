//! `--pid-file PATH`: the pid of the process serving, for scripts and
//! service managers. Every process writes it when it starts serving, so a
//! graceful restart's new process replaces its predecessor's pid; the old
//! process never removes it (it would remove the new one's), and a process
//! shutting down removes it only if it still names that process.

use std::io;
use std::path::Path;

/// Writes this process's pid to `path`, whole or not at all: written to
/// a temporary file beside it and renamed over it, so a reader never
/// sees a half-written or empty file.
///
/// # Errors
/// Those of creating, writing or renaming the file.
pub fn write(path: &Path) -> io::Result<()> {
    let pid = std::process::id();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{pid}.tmp"));
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes `path` if it names this process (not if a newer process
/// rewrote it). Errors are ignored: there is nothing left to do about them.
pub fn remove_if_ours(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_removed_only_while_it_names_this_process() {
        let dir = std::env::temp_dir().join(format!("tenk-pid-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tenk.pid");
        write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // A newer process rewrote it: left alone.
        std::fs::write(&path, "1\n").unwrap();
        remove_if_ours(&path);
        assert!(path.exists(), "another process's pid file was removed");
        write(&path).unwrap();
        remove_if_ours(&path);
        assert!(!path.exists());
        assert!(write(&dir.join("no/such/dir/tenk.pid")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
