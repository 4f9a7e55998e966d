//! `keyfire auth set|list|remove NAME`: keyfire's own admin credentials in the OS keyring,
//! referenced from the inventory as `keyring:NAME`. Values are read from a masked prompt (or
//! one line of standard input when it is not a terminal) and are never printed.

use std::io::IsTerminal;

use super::{AuthCommand, CliError, Context, Exit};
use crate::keyring::{Keyring, KeyringError, valid_name};
use crate::secret::Secret;

fn keyring_error(e: KeyringError) -> CliError {
    match e {
        KeyringError::InvalidName(_) => CliError::input(e.to_string()),
        _ => CliError::failed(e.to_string()),
    }
}

fn read_value(name: &str) -> Result<Secret, CliError> {
    let stdin = std::io::stdin();
    // Zeroed on drop; the copy in stdin's own buffer cannot be reached.
    let value = if stdin.is_terminal() {
        let text = zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("Value for keyring:{name} (input hidden): "))
                .map_err(|e| CliError::failed(format!("cannot read the value: {e}")))?,
        );
        Secret::new(text.trim_end_matches(['\r', '\n']))
    } else {
        crate::secret::read_line_wiped(&mut stdin.lock())
            .map_err(|e| CliError::failed(format!("cannot read the value from stdin: {e}")))?
            .unwrap_or_else(|| Secret::new(""))
    };
    if value.is_empty() {
        return Err(CliError::input(
            "no value given: type it at the prompt, or pipe one line on standard input",
        ));
    }
    Ok(value)
}

pub(super) fn run(_ctx: &Context, cmd: AuthCommand) -> Exit {
    let keyring = Keyring::system();
    match cmd {
        AuthCommand::Set { name } => {
            if !valid_name(&name) {
                return Err(keyring_error(KeyringError::InvalidName(name)));
            }
            let value = read_value(&name)?;
            keyring.set_admin(&name, &value).map_err(keyring_error)?;
            println!(
                "stored keyring:{name} in the {} (reference it as admin_credential = \"keyring:{name}\")",
                keyring.backend()
            );
            Ok(0)
        }
        AuthCommand::List { json } => {
            let names = keyring.admin_names().map_err(keyring_error)?;
            let rows: Vec<(String, bool)> = names
                .into_iter()
                .map(|n| {
                    let present = keyring
                        .has(crate::keyring::ADMIN_SERVICE, &n)
                        .unwrap_or(false);
                    (n, present)
                })
                .collect();
            if json {
                let out = serde_json::json!({
                    "backend": keyring.backend(),
                    "store": keyring.kind().id(),
                    "chosen": keyring.why(),
                    "credentials": rows.iter().map(|(n, p)| serde_json::json!({ "name": n, "reference": format!("keyring:{n}"), "present": p })).collect::<Vec<_>>(),
                });
                println!("{out:#}");
            } else {
                println!("backend: {} ({})", keyring.backend(), keyring.why());
                if rows.is_empty() {
                    println!("no credentials stored by `keyfire auth set`");
                }
                for (n, present) in &rows {
                    let note = if *present {
                        ""
                    } else {
                        "  (missing: the keyring lost it, e.g. at reboot)"
                    };
                    println!("keyring:{n}{note}");
                }
            }
            Ok(0)
        }
        AuthCommand::Remove { name } => {
            if keyring.remove_admin(&name).map_err(keyring_error)? {
                println!("removed keyring:{name} from the {}", keyring.backend());
                Ok(0)
            } else {
                Err(CliError::failed(format!(
                    "no credential keyring:{name} in the {}",
                    keyring.backend()
                )))
            }
        }
    }
}
