//! Runs a fake Key Vault for trying the `azure-keyvault` provider by hand: prints the vault URL,
//! the credentials its token endpoint accepts and writes its certificate to the path given
//! (default `fake-keyvault.pem`), then serves until killed.

fn main() -> std::io::Result<()> {
    let cert_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fake-keyvault.pem".into());
    let vault = writ_fake_keyvault::FakeKeyVault::start()?;
    std::fs::write(&cert_path, vault.certificate_pem())?;
    println!("vault URL / AZURE_AUTHORITY_HOST: {}", vault.url());
    println!("AZURE_TENANT_ID={}", vault.tenant_id());
    println!("AZURE_CLIENT_ID={}", vault.client_id());
    println!("AZURE_CLIENT_SECRET={}", vault.client_secret());
    println!("certificate (trust it as a root): {cert_path}");
    loop {
        std::thread::park();
    }
}
