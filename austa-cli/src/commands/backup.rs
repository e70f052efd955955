//! `austa backup` and `austa restore`.
//!
//! Files are gzip-compressed (the format itself is documented in `austa_core::ops::format`). A backup
//! is written to `FILE.partial` with mode 0600 and renamed into place only once complete, so a failed
//! or interrupted backup never leaves a file that looks whole; existing files are never overwritten.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

use crate::cli::Cli;
use crate::config;
use crate::outcome::{to_json, Failure, Report};
use crate::progress::Reporter;

type Encoder = GzEncoder<BufWriter<File>>;

/// A backup file being written: the final path and its `.partial` sibling.
struct Pending {
    path: PathBuf,
    partial: PathBuf,
}

impl Pending {
    fn create(path: &Path) -> Result<(Self, Encoder), Failure> {
        if path.exists() {
            return Err(Failure::refused(format!("{} exists: backups never overwrite a file", path.display())));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Failure::io(&format!("creating {}", dir.display()), e))?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = austa_core::ops::create_private_file(&partial)
            .map_err(|e| Failure::io(&format!("creating {}", partial.display()), e))?;
        let encoder = GzEncoder::new(BufWriter::new(file), Compression::default());
        Ok((Self { path: path.to_path_buf(), partial }, encoder))
    }

    fn commit(self, encoder: Encoder) -> Result<u64, Failure> {
        let what = format!("writing {}", self.partial.display());
        let file = encoder.finish().map_err(|e| Failure::io(&what, e))?;
        let file = file.into_inner().map_err(|e| Failure::io(&what, e.into_error()))?;
        file.sync_all().map_err(|e| Failure::io(&what, e))?;
        std::fs::rename(&self.partial, &self.path)
            .map_err(|e| Failure::io(&format!("renaming to {}", self.path.display()), e))?;
        Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0))
    }

    fn abandon(self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

pub async fn backup(cli: &Cli, file: &Path, keys: Option<&Path>) -> Result<Report, Failure> {
    if keys == Some(file) {
        return Err(Failure::config("the key backup must be a file of its own"));
    }
    let db = config::open(cli).await?;
    let (data_file, data_out) = Pending::create(file)?;
    let key_out = match keys.map(Pending::create).transpose() {
        Ok(k) => k,
        Err(e) => {
            data_file.abandon();
            return Err(e);
        }
    };
    let (key_file, key_encoder) = match key_out {
        Some((f, e)) => (Some(f), Some(e)),
        None => (None, None),
    };
    let result = db.backup(data_out, key_encoder, &mut Reporter::new()).await;
    db.close().await;
    let (report, data_out, key_encoder) = match result {
        Ok(r) => r,
        Err(e) => {
            data_file.abandon();
            if let Some(k) = key_file {
                k.abandon();
            }
            return Err(e.into());
        }
    };
    let data_bytes = data_file.commit(data_out)?;
    let key_bytes = match (key_file, key_encoder) {
        (Some(f), Some(e)) => Some(f.commit(e)?),
        _ => None,
    };
    let rows: u64 = report.tables.values().sum();
    let mut text =
        format!("backup: {} tables, {rows} rows -> {} ({data_bytes} bytes)", report.tables.len(), file.display());
    if let (Some(path), Some(bytes), Some(tables)) = (keys, key_bytes, &report.key_tables) {
        let _ = write!(
            text,
            "\nkeys: {} rows -> {} ({bytes} bytes); keep it apart from the data backup",
            tables.values().sum::<u64>(),
            path.display()
        );
    }
    let mut json = to_json(&report);
    json["file"] = json!(file.display().to_string());
    json["bytes"] = json!(data_bytes);
    json["keys_file"] = json!(keys.map(|k| k.display().to_string()));
    Ok(Report::new(json, text))
}

fn open_backup(path: &Path) -> Result<BufReader<GzDecoder<BufReader<File>>>, Failure> {
    let file = File::open(path).map_err(|e| Failure::io(&format!("opening {}", path.display()), e))?;
    Ok(BufReader::new(GzDecoder::new(BufReader::new(file))))
}

pub async fn restore(cli: &Cli, file: &Path, keys: Option<&Path>) -> Result<Report, Failure> {
    let data = open_backup(file)?;
    let key_reader = keys.map(open_backup).transpose()?;
    let db = config::open(cli).await?;
    let result = db.restore(data, key_reader, &mut Reporter::new()).await;
    db.close().await;
    let report = result?;
    let rows: u64 = report.tables.values().sum();
    let mut text = format!("restore: {} tables, {rows} rows loaded and counted", report.tables.len());
    if let Some(k) = &report.key_tables {
        let _ = write!(text, "\nkeys: {} rows loaded", k.values().sum::<u64>());
    }
    for chain in &report.audit {
        let _ = match (&chain.report, &chain.error) {
            (Some(r), _) if r.is_intact() => {
                write!(text, "\naudit chain of {}: intact ({} events verified)", chain.organization_id, r.verified)
            }
            (Some(r), _) => write!(
                text,
                "\naudit chain of {}: BROKEN ({})",
                chain.organization_id,
                r.broken.as_ref().map(|b| b.detail.as_str()).unwrap_or("")
            ),
            (None, e) => write!(
                text,
                "\naudit chain of {}: NOT VERIFIED ({})",
                chain.organization_id,
                e.as_deref().unwrap_or("unknown error")
            ),
        };
    }
    let verified = report.is_verified();
    let mut json = to_json(&report);
    json["verified"] = json!(verified);
    Ok(Report::new(json, text).findings_if(!verified))
}
