//! The one environment lookup of every config ([`ObserverConfig`](super::ObserverConfig),
//! [`KafkaConfig`](super::KafkaConfig), `TracingConfig`): each reads its variables through an [`Env`], whose typed
//! helpers turn a bad value into a [`ConfigurationError`] naming the variable.
//!
//! Every config offers the same three methods: `from_env()` (the defaults with the environment applied),
//! `apply_env(self)` (the process environment over values set in code) and `apply_env_from(self, lookup)` (the
//! same with a custom lookup, for tests and for reading a map instead of the process environment).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigurationError;

/// Reads one variable: `std::env::var` in production, a closure over a table in tests.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`] (a variable that is not valid Unicode counts as unset).
pub(crate) fn process(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Typed reads of environment variables. Every helper returns `Ok(None)` when the variable is unset and an error
/// naming the variable when its value does not parse.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    lookup: Lookup<'a>,
    /// The OpenTelemetry rule: an empty (or blank) value counts as unset.
    empty_is_unset: bool,
}

impl<'a> Env<'a> {
    /// The `OBSERVER_*` and `KAFKA_*` variables: a set variable applies, even when empty (validation then names
    /// the field).
    pub(crate) fn new(lookup: Lookup<'a>) -> Self {
        Self { lookup, empty_is_unset: false }
    }

    /// The `OTEL_*` variables: as the OpenTelemetry specification says, an empty value counts as unset.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn otel(lookup: Lookup<'a>) -> Self {
        Self { lookup, empty_is_unset: true }
    }

    /// The raw value.
    pub(crate) fn string(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !(self.empty_is_unset && v.trim().is_empty()))
    }

    /// A path.
    pub(crate) fn path(&self, var: &str) -> Option<PathBuf> {
        self.string(var).map(PathBuf::from)
    }

    /// The trimmed value through `parse`, whose error message is reported with the variable's name.
    pub(crate) fn parse_with<T>(
        &self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigurationError> {
        match self.string(var) {
            None => Ok(None),
            Some(raw) => parse(raw.trim()).map(Some).map_err(|message| ConfigurationError::new(var, message)),
        }
    }

    /// A number (any [`FromStr`] type); the message names the refused value.
    pub(crate) fn parse<T: FromStr>(&self, var: &str) -> Result<Option<T>, ConfigurationError>
    where
        T::Err: fmt::Display,
    {
        self.parse_with(var, |s| s.parse::<T>().map_err(|e| format!("cannot parse `{s}`: {e}")))
    }

    /// One of a config enum's spellings (its `FromStr` error already lists them).
    pub(crate) fn choice<T: FromStr<Err = ConfigurationError>>(
        &self,
        var: &str,
    ) -> Result<Option<T>, ConfigurationError> {
        self.parse_with(var, |s| s.parse::<T>().map_err(|e| e.message))
    }

    /// `true` / `false`, also `1` / `0`, `yes` / `no`, `on` / `off` (any case).
    pub(crate) fn bool(&self, var: &str) -> Result<Option<bool>, ConfigurationError> {
        self.parse_with(var, |s| match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got `{other}`")),
        })
    }

    /// Exactly `true` or `false` (any case), as the OpenTelemetry specification spells its booleans.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn strict_bool(&self, var: &str) -> Result<Option<bool>, ConfigurationError> {
        self.parse_with(var, |s| match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("`{s}` is not `true` or `false`")),
        })
    }

    /// A whole number of milliseconds (the `_MS` variables).
    pub(crate) fn millis(&self, var: &str) -> Result<Option<Duration>, ConfigurationError> {
        Ok(self.parse::<u64>(var)?.map(Duration::from_millis))
    }

    /// An octal permission mode such as `640` or `0o640` (at most `7777`).
    pub(crate) fn octal_mode(&self, var: &str) -> Result<Option<u32>, ConfigurationError> {
        self.parse_with(var, |s| {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            u32::from_str_radix(digits, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("expected an octal mode such as 600, got `{s}`"))
        })
    }
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("empty_is_unset", &self.empty_is_unset).finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lookup over a fixed table.
    pub(crate) fn table(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn typed_reads_name_the_variable() {
        let vars = table(&[
            ("N", " 42 "),
            ("BAD_N", "lots"),
            ("B", "On"),
            ("BAD_B", "maybe"),
            ("MS", "250"),
            ("MODE", "0o640"),
            ("BAD_MODE", "99"),
            ("EMPTY", " "),
            ("STRICT", "yes"),
        ]);
        let env = Env::new(&vars);
        assert_eq!(env.parse::<u32>("N").unwrap(), Some(42));
        assert_eq!(env.parse::<u32>("UNSET").unwrap(), None);
        let err = env.parse::<u32>("BAD_N").unwrap_err();
        assert_eq!(err.field, "BAD_N");
        assert!(err.message.contains("`lots`"), "{err}");
        assert_eq!(env.bool("B").unwrap(), Some(true));
        assert_eq!(env.bool("BAD_B").unwrap_err().field, "BAD_B");
        assert_eq!(env.millis("MS").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(env.octal_mode("MODE").unwrap(), Some(0o640));
        assert_eq!(env.octal_mode("BAD_MODE").unwrap_err().field, "BAD_MODE");
        assert_eq!(env.strict_bool("STRICT").unwrap_err().field, "STRICT");
        // Empty values: set for OBSERVER_*/KAFKA_*, unset for OTEL_*.
        assert_eq!(env.string("EMPTY").as_deref(), Some(" "));
        assert_eq!(Env::otel(&vars).string("EMPTY"), None);
    }
}
