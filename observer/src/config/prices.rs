//! [`PriceConfig`]: where newer LLM price data comes from ([`PriceDataSource`]), how often it is refreshed, and
//! the user's own prices ([`PriceOverride`]); environment overrides and validation.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::env::{self, Env};
use crate::error::ConfigurationError;

/// Fresh LLM price data and the user's own prices (see [Price data](crate::cost#price-data)).
///
/// The default is the data bundled with the `genai-prices` crate and no overrides: nothing is loaded, no thread is
/// started. `init` starts a [`PriceRefresher`](crate::cost::PriceRefresher) from this config when it names a
/// source or overrides; without `init`, start one yourself.
///
/// ```
/// use std::time::Duration;
/// use observer::{PriceConfig, PriceDataSource, PriceOverride};
///
/// let prices = PriceConfig {
///     data: Some(PriceDataSource::Url(observer::cost::GENAI_PRICES_DATA_URL.into())),
///     refresh_interval: Duration::from_secs(6 * 3600),
///     overrides: vec![PriceOverride::new("vllm", "llama-3.1-70b-ft", 0.4, 0.8)],
///     ..Default::default()
/// };
/// let config = observer::ObserverConfig { prices, ..Default::default() };
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PriceConfig {
    /// Newer price data in the `genai-prices` v2 JSON format (the format of its `data/prices.json`), loaded in the
    /// background and refreshed every `refresh_interval`. `None` (default): the bundled data only.
    /// Env `OBSERVER_PRICES_FILE=path` or `OBSERVER_PRICES_URL=https://…` (a URL needs the feature
    /// `prices-http`).
    pub data: Option<PriceDataSource>,
    /// How often `data` (and `overrides_file`) are read again. Default 1 hour; at least 1 s for a URL.
    /// Env `OBSERVER_PRICES_REFRESH_INTERVAL_MS`.
    pub refresh_interval: Duration,
    /// Longest one download of a URL may take, connecting included. Default 30 s.
    /// Env `OBSERVER_PRICES_FETCH_TIMEOUT_MS`.
    pub fetch_timeout: Duration,
    /// Prices of your own models (self-hosted, fine-tuned, negotiated rates); they take precedence over any data.
    pub overrides: Vec<PriceOverride>,
    /// A JSON file holding an array of [`PriceOverride`] objects, read when the refresher starts (an error then)
    /// and again at every refresh; its entries take precedence over `overrides`. Default none.
    /// Env `OBSERVER_PRICE_OVERRIDES_FILE`.
    pub overrides_file: Option<PathBuf>,
}

impl Default for PriceConfig {
    fn default() -> Self {
        Self {
            data: None,
            refresh_interval: Self::DEFAULT_REFRESH_INTERVAL,
            fetch_timeout: Self::DEFAULT_FETCH_TIMEOUT,
            overrides: Vec::new(),
            overrides_file: None,
        }
    }
}

impl PriceConfig {
    /// The default `refresh_interval`: one hour.
    pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
    /// The default `fetch_timeout`: 30 seconds.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
    /// The shortest `refresh_interval` accepted with a URL source, so that a typo cannot hammer a server.
    pub const MIN_URL_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

    /// The defaults with the environment applied.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn from_env() -> Result<Self, ConfigurationError> {
        Self::default().apply_env()
    }

    /// Applies the environment overrides (they win over values set in code):
    ///
    /// | variable | field |
    /// |---|---|
    /// | `OBSERVER_PRICES_FILE` | `data` = that file |
    /// | `OBSERVER_PRICES_URL` | `data` = that URL (setting both variables is an error) |
    /// | `OBSERVER_PRICES_REFRESH_INTERVAL_MS` | `refresh_interval` |
    /// | `OBSERVER_PRICES_FETCH_TIMEOUT_MS` | `fetch_timeout` |
    /// | `OBSERVER_PRICE_OVERRIDES_FILE` | `overrides_file` |
    ///
    /// # Errors
    /// [`ConfigurationError`] naming the variable whose value does not parse.
    pub fn apply_env(self) -> Result<Self, ConfigurationError> {
        self.apply_env_from(&env::process)
    }

    /// [`apply_env`](Self::apply_env) with a custom variable lookup.
    ///
    /// # Errors
    /// As [`apply_env`](Self::apply_env).
    pub fn apply_env_from(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigurationError> {
        let env = Env::new(lookup);
        match (env.path("OBSERVER_PRICES_FILE"), env.string("OBSERVER_PRICES_URL")) {
            (Some(_), Some(_)) => {
                return Err(ConfigurationError::new(
                    "OBSERVER_PRICES_URL",
                    "OBSERVER_PRICES_FILE is set too; set one source of price data",
                ))
            }
            (Some(path), None) => self.data = Some(PriceDataSource::File(path)),
            (None, Some(url)) => self.data = Some(PriceDataSource::Url(url.trim().to_owned())),
            (None, None) => {}
        }
        if let Some(d) = env.millis("OBSERVER_PRICES_REFRESH_INTERVAL_MS")? {
            self.refresh_interval = d;
        }
        if let Some(d) = env.millis("OBSERVER_PRICES_FETCH_TIMEOUT_MS")? {
            self.fetch_timeout = d;
        }
        if let Some(path) = env.path("OBSERVER_PRICE_OVERRIDES_FILE") {
            self.overrides_file = Some(path);
        }
        Ok(self)
    }

    /// Whether this config asks for anything besides the bundled data.
    pub(crate) fn is_configured(&self) -> bool {
        self.data.is_some() || !self.overrides.is_empty() || self.overrides_file.is_some()
    }

    /// Checks every field; errors name it as `prices.<field>` (the file contents are checked when read).
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        if self.refresh_interval.is_zero() {
            return Err(ConfigurationError::new("prices.refresh_interval", "must be greater than zero"));
        }
        if self.fetch_timeout.is_zero() {
            return Err(ConfigurationError::new("prices.fetch_timeout", "must be greater than zero"));
        }
        match &self.data {
            Some(PriceDataSource::File(path)) if path.as_os_str().is_empty() || path.is_dir() => {
                return Err(ConfigurationError::new("prices.data", format!("`{}` is not a file path", path.display())));
            }
            None | Some(PriceDataSource::File(_)) => {}
            Some(PriceDataSource::Url(url)) => {
                check_url(url).map_err(|message| ConfigurationError::new("prices.data", message))?;
                if !cfg!(feature = "prices-http") {
                    return Err(ConfigurationError::new(
                        "prices.data",
                        "loading price data from a URL needs the feature `prices-http` of autonomize-observer",
                    ));
                }
                if self.refresh_interval < Self::MIN_URL_REFRESH_INTERVAL {
                    return Err(ConfigurationError::new(
                        "prices.refresh_interval",
                        "must be at least 1 s with a URL source",
                    ));
                }
            }
        }
        if let Some(path) = &self.overrides_file {
            if path.as_os_str().is_empty() || path.is_dir() {
                return Err(ConfigurationError::new(
                    "prices.overrides_file",
                    format!("`{}` is not a file path", path.display()),
                ));
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            o.validate().map_err(|message| ConfigurationError::new(format!("prices.overrides[{i}]"), message))?;
        }
        Ok(())
    }
}

/// Where newer price data comes from.
///
/// `Debug` shows a URL without its user information, query and fragment (they may hold credentials).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PriceDataSource {
    /// A local file (e.g. one your deployment updates).
    File(PathBuf),
    /// An `https://` URL (plain `http://` only to a loopback address: `127.0.0.1`, `[::1]`, `localhost`), such
    /// as [`GENAI_PRICES_DATA_URL`](crate::cost::GENAI_PRICES_DATA_URL). Needs the feature `prices-http`.
    Url(String),
}

impl PriceDataSource {
    /// The source for reports: the path, or the URL without user information, query and fragment.
    pub fn display_name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => redact_url(url),
        }
    }
}

impl fmt::Debug for PriceDataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Url(url) => f.debug_tuple("Url").field(&redact_url(url)).finish(),
        }
    }
}

/// `scheme://host[:port]/path` of `url`: user information, query and fragment removed.
pub(crate) fn redact_url(url: &str) -> String {
    let url = url.trim();
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Checks that `url` is `https://host…`, or `http://` to a loopback host; the message never repeats the URL's
/// secrets.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{}` is not an http(s) URL", redact_url(url)));
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(h, _)| h)
    } else {
        host_port.split_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("`{}` has no host", redact_url(url)));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if matches!(host.to_ascii_lowercase().as_str(), "127.0.0.1" | "::1" | "localhost") => Ok(()),
        "http" => Err(format!(
            "`{}`: plain http is allowed only to a loopback address (price data decides recorded costs); use https",
            redact_url(url)
        )),
        _ => Err(format!("`{}` is not an http(s) URL", redact_url(url))),
    }
}

/// The price of one of your own models: USD per million tokens, as `genai-prices` writes its rates.
///
/// Matched before any price data, by model id (ignoring ASCII case and surrounding spaces) and provider (through
/// the [provider aliases](crate::cost#providers); an empty provider on either side matches any). A call whose
/// model the data resolves to an overridden model (e.g. `gpt-4o-2024-08-06` → `openai`/`gpt-4o`) takes the
/// override too, so a negotiated rate for `gpt-4o` applies to its dated ids.
///
/// Cached input tokens are charged at `cache_read_mtok`, tokens written to the cache at `cache_write_mtok`
/// (each the input rate when not given), the other input tokens (audio included) at `input_mtok`, every output
/// token (reasoning and audio included) at `output_mtok`.
///
/// In a file (`PriceConfig::overrides_file`), an array of objects with these field names; unknown fields are
/// refused (a misspelt rate would otherwise be silently zero):
///
/// ```json
/// [{"provider": "vllm", "model": "llama-3.1-70b-ft", "input_mtok": 0.4, "output_mtok": 0.8},
///  {"provider": "openai", "model": "gpt-4o", "input_mtok": 2.0, "output_mtok": 8.0, "cache_read_mtok": 1.0}]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    /// The provider, as callers pass it (`""` matches any provider).
    #[serde(default)]
    pub provider: String,
    /// The model id, as callers pass it.
    pub model: String,
    /// USD per million input tokens.
    pub input_mtok: f64,
    /// USD per million output tokens.
    pub output_mtok: f64,
    /// USD per million cached input tokens; `None`: the input rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_mtok: Option<f64>,
    /// USD per million input tokens written to the cache; `None`: the input rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_mtok: Option<f64>,
}

impl PriceOverride {
    /// `model` of `provider` at `input_mtok` / `output_mtok` USD per million tokens.
    pub fn new(provider: impl Into<String>, model: impl Into<String>, input_mtok: f64, output_mtok: f64) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            input_mtok,
            output_mtok,
            cache_read_mtok: None,
            cache_write_mtok: None,
        }
    }

    /// The cache-read rate, USD per million tokens.
    #[must_use]
    pub fn cache_read_mtok(mut self, usd: f64) -> Self {
        self.cache_read_mtok = Some(usd);
        self
    }

    /// The cache-write rate, USD per million tokens.
    #[must_use]
    pub fn cache_write_mtok(mut self, usd: f64) -> Self {
        self.cache_write_mtok = Some(usd);
        self
    }

    /// Checks the model id and the rates (finite, not negative).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.model.trim().is_empty() {
            return Err("`model` must not be empty".into());
        }
        for (name, rate) in [
            ("input_mtok", Some(self.input_mtok)),
            ("output_mtok", Some(self.output_mtok)),
            ("cache_read_mtok", self.cache_read_mtok),
            ("cache_write_mtok", self.cache_write_mtok),
        ] {
            if let Some(rate) = rate {
                if !rate.is_finite() || rate < 0.0 {
                    return Err(format!("`{name}` of `{}` must be a finite non-negative number", self.model.trim()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::env::tests::table;
    use super::*;

    #[test]
    fn env_sets_the_source_and_intervals() {
        let c = PriceConfig::default()
            .apply_env_from(&table(&[
                ("OBSERVER_PRICES_FILE", "/srv/prices.json"),
                ("OBSERVER_PRICES_REFRESH_INTERVAL_MS", "60000"),
                ("OBSERVER_PRICES_FETCH_TIMEOUT_MS", "5000"),
                ("OBSERVER_PRICE_OVERRIDES_FILE", "/srv/overrides.json"),
            ]))
            .unwrap();
        assert_eq!(c.data, Some(PriceDataSource::File("/srv/prices.json".into())));
        assert_eq!(c.refresh_interval, Duration::from_secs(60));
        assert_eq!(c.fetch_timeout, Duration::from_secs(5));
        assert_eq!(c.overrides_file, Some(PathBuf::from("/srv/overrides.json")));
        let c = PriceConfig::default()
            .apply_env_from(&table(&[("OBSERVER_PRICES_URL", " https://prices.example/v2/data.json ")]))
            .unwrap();
        assert_eq!(c.data, Some(PriceDataSource::Url("https://prices.example/v2/data.json".into())));
        let err = PriceConfig::default()
            .apply_env_from(&table(&[("OBSERVER_PRICES_FILE", "a"), ("OBSERVER_PRICES_URL", "https://b")]))
            .unwrap_err();
        assert_eq!(err.field, "OBSERVER_PRICES_URL");
        let err = PriceConfig::default()
            .apply_env_from(&table(&[("OBSERVER_PRICES_REFRESH_INTERVAL_MS", "hourly")]))
            .unwrap_err();
        assert_eq!(err.field, "OBSERVER_PRICES_REFRESH_INTERVAL_MS");
    }

    #[test]
    fn observer_config_reads_and_checks_its_prices() {
        let c = crate::ObserverConfig::default()
            .apply_env_from(&table(&[("OBSERVER_PRICES_FILE", "/srv/prices.json")]))
            .unwrap();
        assert_eq!(c.prices.data, Some(PriceDataSource::File("/srv/prices.json".into())));
        let err = crate::ObserverConfig::default()
            .apply_env_from(&table(&[("OBSERVER_PRICES_FETCH_TIMEOUT_MS", "soon")]))
            .unwrap_err();
        assert_eq!(err.field, "OBSERVER_PRICES_FETCH_TIMEOUT_MS");
        let zero = PriceConfig { fetch_timeout: Duration::ZERO, ..Default::default() };
        let err = crate::ObserverConfig { prices: zero, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.field, "prices.fetch_timeout");
    }

    #[test]
    fn validation_names_the_field() {
        PriceConfig::default().validate().unwrap();
        let zero = PriceConfig { refresh_interval: Duration::ZERO, ..Default::default() };
        assert_eq!(zero.validate().unwrap_err().field, "prices.refresh_interval");
        let plain =
            PriceConfig { data: Some(PriceDataSource::Url("http://prices.example/x".into())), ..Default::default() };
        let err = plain.validate().unwrap_err();
        assert_eq!(err.field, "prices.data");
        assert!(err.message.contains("https"), "{err}");
        let ftp = PriceConfig { data: Some(PriceDataSource::Url("ftp://x/y".into())), ..Default::default() };
        assert_eq!(ftp.validate().unwrap_err().field, "prices.data");
        let bad = PriceConfig { overrides: vec![PriceOverride::new("p", "m", -1.0, 0.0)], ..Default::default() };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "prices.overrides[0]");
        assert!(err.message.contains("input_mtok"), "{err}");
        let nan = PriceConfig {
            overrides: vec![
                PriceOverride::new("p", "m", 1.0, 1.0),
                PriceOverride::new("p", "m", 1.0, 1.0).cache_read_mtok(f64::NAN),
            ],
            ..Default::default()
        };
        assert_eq!(nan.validate().unwrap_err().field, "prices.overrides[1]");
        let unnamed = PriceConfig { overrides: vec![PriceOverride::new("p", " ", 1.0, 1.0)], ..Default::default() };
        assert_eq!(unnamed.validate().unwrap_err().field, "prices.overrides[0]");
        #[cfg(feature = "prices-http")]
        {
            let fast = PriceConfig {
                data: Some(PriceDataSource::Url("https://prices.example/x".into())),
                refresh_interval: Duration::from_millis(10),
                ..Default::default()
            };
            assert_eq!(fast.validate().unwrap_err().field, "prices.refresh_interval");
        }
    }

    #[test]
    fn urls_are_checked_and_redacted() {
        for ok in
            ["https://h/p", "HTTPS://h:8443/p?x=1", "http://127.0.0.1:9/x", "http://[::1]:80/", "http://localhost/"]
        {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in
            ["http://example.com/x", "file:///etc/passwd", "https:///nohost", "prices.json", "http://127.0.0.2.evil/"]
        {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let secret = "https://user:hunter2@prices.example:8443/v2/data.json?token=s3cr3t#frag";
        assert_eq!(redact_url(secret), "https://prices.example:8443/v2/data.json");
        let debug = format!("{:?}", PriceDataSource::Url(secret.into()));
        assert!(!debug.contains("hunter2") && !debug.contains("s3cr3t"), "{debug}");
        let err = check_url("http://user:hunter2@example.com/?token=s3cr3t").unwrap_err();
        assert!(!err.contains("hunter2") && !err.contains("s3cr3t"), "{err}");
    }
}
