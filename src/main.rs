//! The `chamber` command-line interface.

fn main() -> anyhow::Result<()> {
    Ok(())
}
