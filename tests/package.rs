//! The Debian package (`tools/deb`, cargo-deb): built from this test's own
//! debug binary, then read back with dpkg-deb. It must hold the binary
//! (byte for byte), both man pages, completions that match the binary's
//! flags, the systemd unit whose ExecStart names the packaged binary,
//! /etc/default/baton and the example configs as conffiles, and nothing
//! that would make an installed package read a configuration on its own
//! (/etc/baton/baton.toml is the operator's to write).

use std::path::{Path, PathBuf};
use std::process::Command;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the packaging tools are here; under CI=true their absence is a
/// failure (tools/test installs them).
fn tools_present() -> bool {
    let dpkg = Command::new("dpkg-deb").arg("--version").output().is_ok();
    let deb = Command::new(Path::new(ROOT).join("tools/deb"))
        .arg("--install-tool")
        .output()
        .is_ok_and(|o| o.status.success());
    if dpkg && deb {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "dpkg-deb and cargo-deb (tools/deb --install-tool) are needed under CI"
    );
    eprintln!("skipped: dpkg-deb or cargo-deb missing (dpkg-deb {dpkg}, cargo-deb {deb})");
    false
}

#[test]
fn the_deb_holds_binary_man_pages_completions_unit_and_conffiles() {
    if !tools_present() {
        return;
    }
    let dir = TempDir(std::env::temp_dir().join(format!("baton-deb-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let out = dir.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The debug build this test runs with: no release build in the suite.
    let target = Path::new(BATON).parent().unwrap().parent().unwrap();
    let (ok, _, err) = run(Command::new(Path::new(ROOT).join("tools/deb"))
        .args([
            "--profile",
            "dev",
            "--no-build",
            "--no-strip",
            "--fast",
            "-q",
            "-o",
        ])
        .arg(&out)
        .env("CARGO_TARGET_DIR", target));
    assert!(ok, "tools/deb failed:\n{err}");
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb in {out:?}: {debs:?}");
    let deb = &debs[0];

    // The control fields.
    let (ok, info, err) = run(Command::new("dpkg-deb").arg("-I").arg(deb));
    assert!(ok, "dpkg-deb -I: {err}");
    for field in [
        "Package: baton",
        &format!("Version: {}", env!("CARGO_PKG_VERSION")),
        "Section: net",
        "Depends: ",
        "iproute2",
        "conffiles",
    ] {
        assert!(info.contains(field), "control lacks {field:?}:\n{info}");
    }

    // The file list.
    let (ok, list, err) = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    assert!(ok, "dpkg-deb -c: {err}");
    let paths: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches("./"))
        .collect();
    for want in [
        "usr/sbin/baton",
        "usr/share/man/man8/baton.8.gz",
        "usr/share/man/man5/baton.conf.5.gz",
        "usr/share/bash-completion/completions/baton",
        "usr/share/zsh/vendor-completions/_baton",
        "usr/share/fish/vendor_completions.d/baton.fish",
        "lib/systemd/system/baton.service",
        "etc/default/baton",
        "etc/baton/",
        "etc/baton/examples/baton.toml",
        "etc/baton/examples/keepalived.conf",
        "usr/share/doc/baton/copyright",
        "usr/share/doc/baton/status.schema.json",
        "usr/share/doc/baton/examples/grafana-dashboard.json",
        "usr/share/doc/baton/examples/prometheus-alerts.yml",
        "usr/share/doc/baton/examples/frr-route-mode.conf",
    ] {
        assert!(paths.contains(&want), "the package lacks {want}:\n{list}");
    }
    for never in ["etc/baton/baton.toml", "etc/keepalived/keepalived.conf"] {
        assert!(
            !paths.contains(&never),
            "the package must not ship {never}: an installed package would run it"
        );
    }

    // Every example config and the default file are conffiles.
    let ctl = dir.0.join("control");
    let (ok, _, err) = run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctl));
    assert!(ok, "dpkg-deb -e: {err}");
    let conffiles = std::fs::read_to_string(ctl.join("conffiles")).expect("conffiles");
    for path in paths
        .iter()
        .filter(|p| p.starts_with("etc/") && !p.ends_with('/'))
    {
        assert!(
            conffiles.lines().any(|l| l == format!("/{path}")),
            "/{path} is not a conffile:\n{conffiles}"
        );
    }

    // The contents: the binary is this build, the completions are its own,
    // the unit starts the packaged path.
    let root = dir.0.join("root");
    let (ok, _, err) = run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    assert!(ok, "dpkg-deb -x: {err}");
    let packaged = root.join("usr/sbin/baton");
    assert!(
        std::fs::read(&packaged).unwrap() == std::fs::read(BATON).unwrap(),
        "usr/sbin/baton is not the binary that was built"
    );
    let (ok, version, _) = run(Command::new(&packaged).arg("--version"));
    assert!(
        ok && version.contains(env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    for (shell, path) in [
        ("bash", "usr/share/bash-completion/completions/baton"),
        ("zsh", "usr/share/zsh/vendor-completions/_baton"),
        ("fish", "usr/share/fish/vendor_completions.d/baton.fish"),
    ] {
        let (ok, want, _) = run(Command::new(BATON).args(["completions", shell]));
        assert!(ok);
        assert_eq!(
            std::fs::read_to_string(root.join(path)).unwrap(),
            want,
            "{path} differs from `baton completions {shell}`"
        );
    }
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/baton.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let program = exec.split_whitespace().next().unwrap();
    assert!(
        root.join(program.trim_start_matches('/')).is_file(),
        "the unit starts {program}, which the package does not hold"
    );
    let default = std::fs::read_to_string(root.join("etc/default/baton")).unwrap();
    assert!(
        unit.contains("EnvironmentFile=-/etc/default/baton") && default.contains("DAEMON_ARGS="),
        "the unit's flags file and the shipped one disagree"
    );
    // The example configs pass `baton check` as shipped.
    for example in [
        "baton.toml",
        "minimal.toml",
        "route-mode.toml",
        "keepalived.conf",
    ] {
        let path = root.join("etc/baton/examples").join(example);
        let (ok, out, err) = run(Command::new(BATON)
            .args(["check", "--no-host", "-f"])
            .arg(&path));
        assert!(ok, "baton check {example}:\n{out}{err}");
    }
}
