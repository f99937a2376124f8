//! nftables: the `inet chaos` table that injects loss and partitions.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The `inet chaos` table with its input chain; deleted when dropped.
pub(super) struct Nft {
    bin: PathBuf,
}

impl Nft {
    /// Creates the table (replacing a leftover one) and its input chain.
    pub(super) fn create(bin: PathBuf) -> Result<Nft> {
        let nft = Nft { bin };
        // `add` first so the `delete` never fails on a missing table.
        nft.script(
            "add table inet chaos\n\
             delete table inet chaos\n\
             add table inet chaos\n\
             add chain inet chaos input { type filter hook input priority 0; policy accept; }\n",
        )
        .context("creating the nftables table inet chaos (is nf_tables available?)")?;
        Ok(nft)
    }

    /// Appends `rule` to the input chain.
    pub(super) fn rule(&self, rule: &str) -> Result<()> {
        self.script(&format!("add rule inet chaos input {rule}\n"))
    }

    /// Removes every rule from the input chain.
    pub(super) fn clear(&self) -> Result<()> {
        self.script("flush chain inet chaos input\n")
    }

    fn script(&self, text: &str) -> Result<()> {
        for line in text.lines() {
            eprintln!("$ nft {line}");
        }
        let mut child = Command::new(&self.bin)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        child.stdin.take().context("nft stdin")?.write_all(text.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        let _ = self.script("delete table inet chaos\n");
    }
}
