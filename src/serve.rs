//! `linstor-migrator serve`: placeholder until the HTTP layer lands.
pub async fn run(_c: &crate::config::Common, _a: &crate::config::ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not wired yet")
}
