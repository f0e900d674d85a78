//! The lab's own certificate authority: servers get certificates from it, clients trust only it.
//! Server certificates carry both serverAuth and clientAuth because ejabberd checks the purpose of
//! the certificate that Prosody presents when it dials out for federation.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::{LabError, Result};

/// A generated CA and the folder its files are written to.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A server's certificate and key, as files.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// PEM certificate (leaf, then the CA).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Certificate chain and key in one file (what ejabberd wants).
    pub combined: PathBuf,
}

impl Pki {
    /// Makes a fresh CA and writes `ca.pem` into `dir`.
    pub fn new(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        set_validity(&mut params);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "chamber lab CA");
        params.distinguished_name = dn;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write(&dir.join("ca.pem"), &cert.pem())?;
        Ok(Pki {
            issuer: Issuer::new(params, key),
            dir: dir.to_path_buf(),
        })
    }

    /// The CA certificate clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a server certificate for `names` (the first is the common name).
    pub fn issue(&self, names: &[&str]) -> Result<ServerCert> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0]);
        params.distinguished_name = dn;
        set_validity(&mut params);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let ca =
            std::fs::read_to_string(self.ca_file()).map_err(LabError::io("read the lab CA"))?;
        let chain = format!("{}{}", cert.pem(), ca);
        let base = self.dir.join(names[0].replace('.', "_"));
        let out = ServerCert {
            cert: base.with_extension("crt"),
            key: base.with_extension("key"),
            combined: base.with_extension("pem"),
        };
        write(&out.cert, &chain)?;
        write(&out.key, &key.serialize_pem())?;
        write(&out.combined, &format!("{chain}{}", key.serialize_pem()))?;
        Ok(out)
    }
}

/// From last year to two years ahead: rcgen's default end (year 4096) crashes Erlang's pkix.
fn set_validity(params: &mut CertificateParams) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = 1970 + (secs / 31_556_952) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(LabError::io(format!("write {}", path.display())))
}
