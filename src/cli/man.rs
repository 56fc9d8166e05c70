//! The man page (`etcdplan man`), rendered by clap_mangen from the same
//! definitions as `--help`, with every command as a subsection.

use std::io::Write as _;

use clap::CommandFactory as _;

use super::Cli;

/// roff's apostrophe preamble, which clap_mangen writes before every part it
/// renders; the page needs it once, at the top.
const ROFF_PREAMBLE: [&str; 2] = [r".ie \n(.g .ds Aq \(aq", ".el .ds Aq '"];

/// The man page: the global options, then every command with its own options,
/// all from the clap definitions that `--help` and the completions use.
pub(super) fn man_page(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let cli = Cli::command();
    let page = clap_mangen::Man::new(cli.clone());
    let mut roff = Vec::new();
    page.render_title(&mut roff)?;
    page.render_name_section(&mut roff)?;
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    page.render_options_section(&mut roff)?;
    writeln!(roff, ".SH COMMANDS")?;
    for sub in cli.get_subcommands() {
        man_command(&mut roff, sub, cli.get_name())?;
    }
    page.render_version_section(&mut roff)?;
    for line in ROFF_PREAMBLE {
        writeln!(out, "{line}")?;
    }
    for line in String::from_utf8_lossy(&roff)
        .lines()
        .filter(|l| !ROFF_PREAMBLE.contains(l))
    {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One command's part of the man page, as a subsection: its description,
/// synopsis and own options (the global ones are listed once, above).
fn man_command(roff: &mut Vec<u8>, cmd: &clap::Command, parent: &str) -> std::io::Result<()> {
    let name = format!("{parent} {}", cmd.get_name());
    let page = clap_mangen::Man::new(cmd.clone().bin_name(&name));
    writeln!(roff, ".SS \"{name}\"")?;
    let mut text = Vec::new();
    page.render_description_section(&mut text)?;
    page.render_synopsis_section(&mut text)?;
    page.render_options_section(&mut text)?;
    // clap_mangen makes each part a section of a page; here they are paragraphs.
    for line in String::from_utf8_lossy(&text).lines() {
        if line.starts_with(".SH ") {
            writeln!(roff, ".PP")?;
        } else {
            writeln!(roff, "{line}")?;
        }
    }
    for sub in cmd.get_subcommands() {
        man_command(roff, sub, &name)?;
    }
    Ok(())
}
