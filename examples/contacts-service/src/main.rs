//! `contacts-service`: serves the example on `CONTACTS_LISTEN` (default 127.0.0.1:8081),
//! guarded by Tessera at `TESSERA_ISSUER` for the resource `CONTACTS_RESOURCE`, with the API
//! key in `TESSERA_API_KEY` (it needs `revocations.read`).

use anyhow::Context as _;
use tessera_guard::{Guard, GuardConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let issuer = var("TESSERA_ISSUER")?;
    let resource = var("CONTACTS_RESOURCE")?;
    let key = var("TESSERA_API_KEY")?;
    let listen = std::env::var("CONTACTS_LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let mut config = GuardConfig::new(issuer, resource).with_credential(key);
    if let Ok(url) = std::env::var("TESSERA_URL") {
        config = config.with_tessera_url(url);
    }
    let guard = Guard::start(config).await.context("starting the guard")?;
    let app = contacts_service::app(&guard, contacts_service::Contacts::default())
        .context("route declarations")?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(%listen, "contacts-service listening");
    println!("listening on {}", listener.local_addr()?);
    app.serve(listener).await?;
    Ok(())
}
