//! One module per command family; each returns a [`Report`] or a [`Failure`].

mod audit;
mod backup;
mod keys;
mod migrations;
mod reset;
mod validate;

use crate::cli::{Cli, Command};
use crate::outcome::{Failure, Report};

/// Runs the command the command line names.
pub async fn run(cli: &Cli) -> Result<Report, Failure> {
    match &cli.command {
        Command::Migrate => migrations::migrate(cli).await,
        Command::Status { migrations } => migrations::status(cli, migrations.as_deref()).await,
        Command::Seed => reset::seed(cli).await,
        Command::Reset { allow_non_development } => reset::reset(cli, *allow_non_development).await,
        Command::Backup { file, keys } => backup::backup(cli, file, keys.as_deref()).await,
        Command::Restore { file, keys } => backup::restore(cli, file, keys.as_deref()).await,
        Command::Validate => validate::validate(cli).await,
        Command::Audit(command) => audit::run(cli, command).await,
        Command::Keys(command) => keys::run(cli, command).await,
    }
}
