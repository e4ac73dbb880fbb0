//! TODO(helper): bundled dashboards and preparation for provisioning.
