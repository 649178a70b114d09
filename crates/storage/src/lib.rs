//! Object stores configured in `dfpipe.toml`.
//!
//! A `[storage."<scheme>://<bucket>"]` table says where a store is (`endpoint`, `region`,
//! `allow_http`, `max_retries`), never how to log in: [`build`] starts from `object_store`'s own builders
//! read from the environment (`AmazonS3Builder::from_env` and its siblings), so credentials
//! come from environment variables or the provider's usual chain, and a key that looks like
//! a secret is refused when the file is parsed. `s3://` is built in (feature `aws`, on by
//! default); `gs://` (feature `gcp`) and `az://`/`abfss://` (feature `azure`) are opt-in.
//!
//! This crate knows nothing about DataFusion or the rest of dfpipe: the caller registers
//! the stores it builds.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use object_store::ObjectStore;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// An error building a store; nothing was contacted.
#[derive(Debug, thiserror::Error)]
#[error("[storage.\"{prefix}\"]: {message}")]
pub struct StorageError {
    /// The storage table at fault.
    pub prefix: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The kinds of object store a storage table configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    /// Amazon S3 and S3-compatible servers: `s3://`, `s3a://`.
    S3,
    /// Google Cloud Storage: `gs://`.
    Gcs,
    /// Azure Blob Storage and ADLS Gen2: `az://`, `azure://`, `abfs://`, `abfss://`.
    Azure,
}

impl Provider {
    /// The provider of URLs with `scheme`, if any.
    pub fn of_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "s3" | "s3a" => Some(Self::S3),
            "gs" => Some(Self::Gcs),
            "az" | "azure" | "abfs" | "abfss" => Some(Self::Azure),
            _ => None,
        }
    }

    /// The cargo feature that builds this provider in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::S3 => "aws",
            Self::Gcs => "gcp",
            Self::Azure => "azure",
        }
    }

    /// Whether this build has the provider.
    pub fn enabled(self) -> bool {
        match self {
            Self::S3 => cfg!(feature = "aws"),
            Self::Gcs => cfg!(feature = "gcp"),
            Self::Azure => cfg!(feature = "azure"),
        }
    }

    /// Where the store's credentials come from, as a sentence for error messages.
    pub fn credentials(self) -> &'static str {
        match self {
            Self::S3 => {
                "credentials come from the environment variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
                 AWS_SESSION_TOKEN, or from AWS's usual provider chain (a web identity token, container or \
                 instance credentials)"
            }
            Self::Gcs => {
                "credentials come from the environment variables GOOGLE_SERVICE_ACCOUNT (a service account file), \
                 GOOGLE_SERVICE_ACCOUNT_KEY or GOOGLE_APPLICATION_CREDENTIALS, or from the instance metadata"
            }
            Self::Azure => {
                "credentials come from the environment variables AZURE_STORAGE_ACCOUNT_NAME with \
                 AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and \
                 AZURE_TENANT_ID, or from a managed identity"
            }
        }
    }
}

/// The name of a storage table: `<scheme>://<bucket>`, the prefix of every URL its store
/// serves. Parsing checks that the scheme is known and built in, and that the URL names a
/// bucket and nothing inside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePrefix {
    url: Url,
    provider: Provider,
}

impl StorePrefix {
    /// The prefix as a URL (`s3://bucket`), as object-store registries take it.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The kind of store.
    pub fn provider(&self) -> Provider {
        self.provider
    }
}

impl fmt::Display for StorePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

impl FromStr for StorePrefix {
    type Err = StorageError;

    fn from_str(text: &str) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError { prefix: text.to_owned(), message };
        let example = "a storage table is named after a bucket, like [storage.\"s3://my-bucket\"]";
        let url = Url::parse(text).map_err(|e| invalid(format!("not a URL ({e}); {example}")))?;
        let scheme = url.scheme();
        let provider = Provider::of_scheme(scheme).ok_or_else(|| {
            invalid(format!(
                "unknown scheme `{scheme}://`; storage tables configure s3:// (and s3a://), gs://, and az:// \
                 (and azure://, abfs://, abfss://) stores, while local paths and file:// URLs need none"
            ))
        })?;
        if !provider.enabled() {
            return Err(invalid(format!(
                "this dfpipe was built without {scheme}:// stores; build it with `--features {}`",
                provider.feature()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("names no bucket; {example}")));
        }
        if url.password().is_some() {
            return Err(invalid(format!(
                "holds a password: credentials never go in dfpipe.toml; {}",
                provider.credentials()
            )));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(format!(
                "names a path inside a bucket; {example}: its store serves every URL under the bucket"
            )));
        }
        Ok(Self { url, provider })
    }
}

impl Serialize for StorePrefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StorePrefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: StorageError| de::Error::custom(e.message))
    }
}

/// The body of a storage table: where the store is. Unknown keys are refused, and a key
/// that looks like a secret is refused with where credentials come from instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreOptions {
    /// The server's URL, for S3-compatible servers, emulators and private endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region (S3 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether plain `http://` endpoints are allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// How many times a failed request (a connection refused, a timeout, a 5xx answer) is
    /// retried, with exponential backoff, before the read or write fails; `object_store`'s
    /// default (10, within 3 minutes) when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<usize>,
}

const FIELDS: &[&str] = &["endpoint", "region", "allow_http", "max_retries"];

impl StoreOptions {
    fn retry(&self) -> object_store::RetryConfig {
        let mut retry = object_store::RetryConfig::default();
        if let Some(max) = self.max_retries {
            retry.max_retries = max;
        }
        retry
    }
}

/// Whether a key of a storage table names a credential.
fn looks_secret(key: &str) -> bool {
    const SECRET_WORDS: [&str; 11] = [
        "secret",
        "password",
        "passwd",
        "token",
        "access_key",
        "account_key",
        "credential",
        "sas",
        "private_key",
        "service_account",
        "session",
    ];
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|word| key.contains(word)) || key.ends_with("_key") || key == "key"
}

impl<'de> Deserialize<'de> for StoreOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionsVisitor;

        impl<'de> Visitor<'de> for OptionsVisitor {
            type Value = StoreOptions;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a storage table with `endpoint`, `region`, `allow_http` and `max_retries`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StoreOptions, A::Error> {
                let mut options = StoreOptions::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "endpoint" => options.endpoint = Some(map.next_value()?),
                        "region" => options.region = Some(map.next_value()?),
                        "allow_http" => options.allow_http = Some(map.next_value()?),
                        "max_retries" => options.max_retries = Some(map.next_value()?),
                        _ if looks_secret(&key) => {
                            // The value is dropped unread: a secret is never echoed.
                            map.next_value::<IgnoredAny>()?;
                            return Err(de::Error::custom(format!(
                                "`{key}` looks like a credential, and credentials never go in dfpipe.toml: \
                                 remove it and set them in the environment (for S3: AWS_ACCESS_KEY_ID, \
                                 AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); a storage table takes only \
                                 `endpoint`, `region`, `allow_http` and `max_retries`"
                            )));
                        }
                        _ => return Err(de::Error::unknown_field(&key, FIELDS)),
                    }
                }
                Ok(options)
            }
        }

        deserializer.deserialize_struct("StoreOptions", FIELDS, OptionsVisitor)
    }
}

/// Builds the store of storage table `prefix`: the provider's builder read from the
/// environment, then the table's options over it. Nothing is contacted until the store is
/// used.
pub fn build(prefix: &StorePrefix, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let invalid = |message: String| StorageError { prefix: prefix.to_string(), message };
    let failed = |e: object_store::Error| invalid(format!("cannot configure the store: {e}"));
    if options.region.is_some() && prefix.provider != Provider::S3 {
        return Err(invalid("`region` applies to s3:// stores only".to_owned()));
    }
    match prefix.provider {
        #[cfg(feature = "aws")]
        Provider::S3 => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_url(prefix.url.as_str())
                .with_retry(options.retry());
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &options.region {
                builder = builder.with_region(region);
            }
            if let Some(allow) = options.allow_http {
                builder = builder.with_allow_http(allow);
            }
            // Said now: the client would only fail its first request with "builder error".
            let config = |key| builder.get_config_value(&key).unwrap_or_default();
            let endpoint = config(object_store::aws::AmazonS3ConfigKey::Endpoint);
            let allow_http =
                config(object_store::aws::AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp));
            if endpoint.starts_with("http://") && !allow_http.eq_ignore_ascii_case("true") {
                return Err(invalid(format!(
                    "the endpoint `{endpoint}` is plain HTTP, which the store refuses unless the table says \
                     `allow_http = true`"
                )));
            }
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        #[cfg(feature = "gcp")]
        Provider::Gcs => {
            use object_store::ClientConfigKey;
            use object_store::gcp::GoogleConfigKey;
            let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(prefix.url.as_str())
                .with_retry(options.retry());
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_base_url(endpoint);
            }
            if let Some(allow) = options.allow_http {
                builder = builder.with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), allow.to_string());
            }
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        #[cfg(feature = "azure")]
        Provider::Azure => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(prefix.url.as_str())
                .with_retry(options.retry());
            if let Some(endpoint) = &options.endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            if let Some(allow) = options.allow_http {
                builder = builder.with_allow_http(allow);
            }
            Ok(Arc::new(builder.build().map_err(failed)?))
        }
        #[allow(unreachable_patterns)] // every provider is built in
        other => Err(invalid(format!("this dfpipe was built without the `{}` feature", other.feature()))),
    }
}

/// When `error` says the store refused the credentials it was given (or their rights),
/// a sentence saying so for the store of `url` and where the credentials come from.
pub fn credentials_hint(url: &Url, error: &object_store::Error) -> Option<String> {
    let provider = Provider::of_scheme(url.scheme())?;
    let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    let refused = match error {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => true,
        // Listings report the server's status only in their message.
        object_store::Error::Generic { .. } => {
            let text = error.to_string();
            text.contains("status code: 401") || text.contains("status code: 403")
        }
        _ => false,
    };
    refused.then(|| format!("the object store refused the credentials for `{bucket}`; {}", provider.credentials()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{StoreOptions, StorePrefix, looks_secret};

    fn parse(text: &str) -> Result<BTreeMap<StorePrefix, StoreOptions>, String> {
        #[derive(serde::Deserialize)]
        struct File {
            storage: BTreeMap<StorePrefix, StoreOptions>,
        }
        toml::from_str::<File>(text).map(|f| f.storage).map_err(|e| e.to_string())
    }

    #[test]
    fn a_storage_table_configures_a_bucket() {
        let storage = parse(
            "[storage.\"s3://shop-data\"]\nendpoint = \"http://127.0.0.1:9000\"\nregion = \"us-east-1\"\nallow_http = true\n",
        )
        .unwrap();
        let (prefix, mut options) = storage.into_iter().next().unwrap();
        assert_eq!(prefix.to_string(), "s3://shop-data");
        assert_eq!(options.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(options.allow_http, Some(true));
        super::build(&prefix, &options).unwrap();
        options.allow_http = None;
        let error = super::build(&prefix, &options).err().unwrap().to_string();
        assert!(error.contains("`allow_http = true`") && error.contains("s3://shop-data"), "{error}");
    }

    #[test]
    fn secrets_unknown_keys_and_bad_prefixes_are_refused() {
        for (text, expected) in [
            ("[storage.\"s3://b\"]\nsecret_access_key = \"abc123\"\n", "`secret_access_key` looks like a credential"),
            (
                "[storage.\"s3://b\"]\nregion = \"x\"\naccess_key_id = \"AKIA\"\n",
                "`access_key_id` looks like a credential",
            ),
            ("[storage.\"s3://b\"]\nsession_token = \"t\"\n", "AWS_SESSION_TOKEN"),
            ("[storage.\"s3://b\"]\nendpoint = \"x\"\nbucket = \"b\"\n", "unknown field `bucket`"),
            ("[storage.\"s3://b\"]\nallow_http = \"yes\"\n", "invalid type"),
            ("[storage.\"ftp://b\"]\n", "unknown scheme `ftp://`"),
            ("[storage.\"s3://b/some/path\"]\n", "names a path inside a bucket"),
            ("[storage.\"s3://\"]\n", "names no bucket"),
            ("[storage.\"s3://user:hunter2@b\"]\n", "credentials never go in dfpipe.toml"),
            ("[storage.\"bucket\"]\n", "not a URL"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            // The error points at the table, not at the line holding the value.
            assert!(!error.contains("abc123") && !error.contains("AKIA\""), "{error}");
        }
        assert!(
            ["token", "password", "client_secret", "sas_token", "account_key", "service_account_key", "key"]
                .iter()
                .all(|k| looks_secret(k))
        );
        assert!(!["endpoint", "region", "allow_http", "bucket"].iter().any(|k| looks_secret(k)));
    }

    #[cfg(not(feature = "gcp"))]
    #[test]
    fn a_provider_not_built_in_says_which_feature_brings_it() {
        let error = parse("[storage.\"gs://b\"]\n").unwrap_err();
        assert!(error.contains("--features gcp"), "{error}");
    }
}
