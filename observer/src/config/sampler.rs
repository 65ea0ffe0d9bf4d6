//! [`TraceSampler`] (feature `otel`): which spans are sampled, from code or `OTEL_TRACES_SAMPLER` /
//! `OTEL_TRACES_SAMPLER_ARG`. Sampling applies to spans only, never to audit events.

use super::env::Env;
use crate::error::ConfigurationError;

/// Which spans are recorded and exported: the samplers of the OpenTelemetry specification that
/// `OTEL_TRACES_SAMPLER` names. Applies to **spans only**: an audit event is written whether or not the span it
/// was emitted in is sampled (it still carries the span's `trace_id` / `span_id`), and metrics count every call.
///
/// Default [`ParentBasedAlwaysOn`](Self::ParentBasedAlwaysOn), the specification's default.
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum TraceSampler {
    /// Every span (`always_on`).
    AlwaysOn,
    /// No span (`always_off`).
    AlwaysOff,
    /// A root span with this probability, 0.0 to 1.0, decided from its trace id (`traceidratio`); child spans
    /// decide alike, so a trace is kept or dropped as a whole.
    TraceIdRatio(f64),
    /// A child span follows its parent's decision; a root span is sampled (`parentbased_always_on`).
    #[default]
    ParentBasedAlwaysOn,
    /// A child span follows its parent's decision; a root span is not sampled (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// A child span follows its parent's decision; a root span is sampled with this probability
    /// (`parentbased_traceidratio`).
    ParentBasedTraceIdRatio(f64),
}

impl TraceSampler {
    /// The `OTEL_TRACES_SAMPLER` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlwaysOn => "always_on",
            Self::AlwaysOff => "always_off",
            Self::TraceIdRatio(_) => "traceidratio",
            Self::ParentBasedAlwaysOn => "parentbased_always_on",
            Self::ParentBasedAlwaysOff => "parentbased_always_off",
            Self::ParentBasedTraceIdRatio(_) => "parentbased_traceidratio",
        }
    }

    /// Checks the ratio (0.0 to 1.0, not NaN).
    pub(crate) fn validate(self) -> Result<(), ConfigurationError> {
        match self {
            Self::TraceIdRatio(r) | Self::ParentBasedTraceIdRatio(r) if !(0.0..=1.0).contains(&r) => {
                Err(ConfigurationError::new("sampler", format!("ratio {r} is not between 0.0 and 1.0")))
            }
            _ => Ok(()),
        }
    }

    /// `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG` (the ratio of the `*traceidratio` samplers, default
    /// 1.0; ignored by the others, as the specification says). `None` when the sampler variable is unset.
    pub(crate) fn from_env(env: &Env<'_>) -> Result<Option<Self>, ConfigurationError> {
        const VAR: &str = "OTEL_TRACES_SAMPLER";
        const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
        let Some(name) = env.string(VAR) else { return Ok(None) };
        let ratio = || -> Result<f64, ConfigurationError> {
            let r = env.parse_with(ARG, |s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("`{s}` is not a ratio between 0.0 and 1.0"))
            })?;
            Ok(r.unwrap_or(1.0))
        };
        let sampler = match name.trim().to_ascii_lowercase().as_str() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio(ratio()?),
            other => {
                return Err(ConfigurationError::new(
                    VAR,
                    format!(
                        "unsupported sampler `{other}`; expected always_on, always_off, traceidratio, \
                         parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                    ),
                ))
            }
        };
        Ok(Some(sampler))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::tests::table;

    fn parse(pairs: &'static [(&'static str, &'static str)]) -> Result<Option<TraceSampler>, ConfigurationError> {
        let lookup = table(pairs);
        TraceSampler::from_env(&Env::otel(&lookup))
    }

    #[test]
    fn every_specified_sampler_is_read_from_the_environment() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("OTEL_TRACES_SAMPLER", "always_on")]).unwrap(), Some(TraceSampler::AlwaysOn));
        assert_eq!(parse(&[("OTEL_TRACES_SAMPLER", " Always_Off ")]).unwrap(), Some(TraceSampler::AlwaysOff));
        assert_eq!(
            parse(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]).unwrap(),
            Some(TraceSampler::TraceIdRatio(0.25))
        );
        assert_eq!(parse(&[("OTEL_TRACES_SAMPLER", "traceidratio")]).unwrap(), Some(TraceSampler::TraceIdRatio(1.0)));
        assert_eq!(
            parse(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]).unwrap(),
            Some(TraceSampler::ParentBasedAlwaysOn)
        );
        assert_eq!(
            parse(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off"), ("OTEL_TRACES_SAMPLER_ARG", "junk")]).unwrap(),
            Some(TraceSampler::ParentBasedAlwaysOff),
            "the argument is ignored by samplers without one"
        );
        assert_eq!(
            parse(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0")]).unwrap(),
            Some(TraceSampler::ParentBasedTraceIdRatio(0.0))
        );
        assert_eq!(parse(&[("OTEL_TRACES_SAMPLER", "")]).unwrap(), None, "empty is unset");
    }

    #[test]
    fn bad_samplers_and_ratios_name_the_variable() {
        let field = |pairs| parse(pairs).unwrap_err().field;
        assert_eq!(field(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]), "OTEL_TRACES_SAMPLER");
        for arg in ["1.5", "-0.1", "NaN", "half"] {
            let pairs: &'static [(&str, &str)] =
                Box::leak(Box::new([("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", arg)]));
            assert_eq!(field(pairs), "OTEL_TRACES_SAMPLER_ARG", "{arg}");
        }
        assert!(TraceSampler::TraceIdRatio(f64::NAN).validate().is_err());
        assert!(TraceSampler::ParentBasedTraceIdRatio(2.0).validate().is_err());
        TraceSampler::TraceIdRatio(0.5).validate().unwrap();
        assert_eq!(TraceSampler::default(), TraceSampler::ParentBasedAlwaysOn);
        assert_eq!(TraceSampler::ParentBasedTraceIdRatio(0.1).as_str(), "parentbased_traceidratio");
    }
}
