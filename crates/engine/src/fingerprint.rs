//! Stage "fingerprint": each view's fingerprint from its captured plan, the settings that
//! shape its output, the relevant part of the environment, and its upstream fingerprints
//! (sources' from their files, views' from this stage), in dependency order.

use std::collections::BTreeMap;

use dfpipe_artifacts::{Captured, Environment, Fingerprint};

use crate::spec::{Materialize, Profile, ViewSpec};
use crate::views::LogicalView;

/// Seals every bundle and returns the fingerprints, in the order of `views`, which must be
/// a dependency order. `sources` are the sources' fingerprints by name.
pub(crate) fn fingerprint_all(
    views: &[LogicalView],
    captured: &mut [Captured],
    profile: &Profile,
    environment: &Environment,
    sources: BTreeMap<String, Fingerprint>,
) -> Vec<Fingerprint> {
    let mut known = sources;
    let mut out = Vec::with_capacity(views.len());
    for (view, captured) in views.iter().zip(captured.iter_mut()) {
        let upstream: BTreeMap<String, Fingerprint> = (captured.bundle.lineage.depends_on.iter())
            .filter_map(|r| known.get(r).map(|f| (r.clone(), f.clone())))
            .collect();
        let fingerprint = captured.bundle.seal(settings(profile, &view.spec), environment, upstream);
        known.insert(view.name.clone(), fingerprint.clone());
        out.push(fingerprint);
    }
    out
}

/// The settings that go into a view's fingerprint: the profile's DataFusion settings, how
/// the view materializes, and for a written view its partitioning and format options.
fn settings(profile: &Profile, spec: &ViewSpec) -> BTreeMap<String, String> {
    let mut settings = profile.settings();
    settings.insert("dfpipe.materialize".to_owned(), format!("{:?}", spec.materialize));
    settings.insert("dfpipe.partition_by".to_owned(), spec.partition_by.join(","));
    if spec.materialize == Materialize::Parquet {
        for (key, value) in profile.parquet_options() {
            settings.insert(format!("format.{key}"), value);
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::settings;
    use crate::spec::{Materialize, Profile, ViewSpec, WriterProfile};

    #[test]
    fn only_written_views_take_the_format_options() {
        let profile = Profile {
            writer: WriterProfile { compression: Some("zstd(3)".to_owned()), ..WriterProfile::default() },
            ..Profile::default()
        };
        let lazy = settings(&profile, &ViewSpec::default());
        assert_eq!(lazy["dfpipe.materialize"], "Lazy");
        assert!(!lazy.contains_key("format.compression"));
        let written = settings(&profile, &ViewSpec { materialize: Materialize::Parquet, ..ViewSpec::default() });
        assert_eq!(written["format.compression"], "zstd(3)");
    }
}
