//! CLI behaviour: exit codes, files written, messages.
