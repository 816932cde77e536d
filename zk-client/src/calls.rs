//! The list of client calls, written once. Code that needs one item per call
//! (the blocking adapter's wrappers, the test suite's facade) passes a macro of its
//! own to [`for_each_call!`], which invokes it with the whole list:
//! `$( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*`.

/// Invokes `$callback!` with every async call of `zk_client::Client` (see the module docs).
#[macro_export]
macro_rules! for_each_call {
    ($callback:ident) => {
        $callback! {
    /// See [`zk_client::Client::create`].
    fn create(&self, path: &str, data: impl IntoData, mode: CreateMode) -> String;
    /// See [`zk_client::Client::create_with`].
    fn create_with(&self, path: &str, data: impl IntoData, opts: &CreateOptions) -> (String, Stat);
    /// See [`zk_client::Client::ensure_path`].
    fn ensure_path(&self, path: &str) -> ();
    /// See [`zk_client::Client::set_data`].
    fn set_data(&self, path: &str, data: impl IntoData, version: Option<i32>) -> Stat;
    /// See [`zk_client::Client::delete`].
    fn delete(&self, path: &str, version: Option<i32>) -> ();
    /// See [`zk_client::Client::delete_recursive`].
    fn delete_recursive(&self, path: &str) -> ();
    /// See [`zk_client::Client::set_acl`].
    fn set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Stat;
    /// See [`zk_client::Client::multi`].
    fn multi(&self, ops: Vec<Op>) -> Vec<OpResult>;
    /// See [`zk_client::Client::exists`].
    fn exists(&self, path: &str) -> Option<Stat>;
    /// See [`zk_client::Client::exists_watch`].
    fn exists_watch(&self, path: &str) -> (Option<Stat>, OneshotWatch);
    /// See [`zk_client::Client::get_data`].
    fn get_data(&self, path: &str) -> (Data, Stat);
    /// See [`zk_client::Client::get_data_watch`].
    fn get_data_watch(&self, path: &str) -> (Data, Stat, OneshotWatch);
    /// See [`zk_client::Client::get_children`].
    fn get_children(&self, path: &str) -> Vec<String>;
    /// See [`zk_client::Client::get_children_stat`].
    fn get_children_stat(&self, path: &str) -> (Vec<String>, Stat);
    /// See [`zk_client::Client::get_children_watch`].
    fn get_children_watch(&self, path: &str) -> (Vec<String>, Stat, OneshotWatch);
    /// See [`zk_client::Client::get_acl`].
    fn get_acl(&self, path: &str) -> (Vec<Acl>, Stat);
    /// See [`zk_client::Client::sync`].
    fn sync(&self, path: &str) -> String;
    /// See [`zk_client::Client::multi_read`].
    fn multi_read(&self, ops: Vec<ReadOp>) -> Vec<Result<ReadResult>>;
    /// See [`zk_client::Client::get_ephemerals`].
    fn get_ephemerals(&self, prefix: &str) -> Vec<String>;
    /// See [`zk_client::Client::get_all_children_number`].
    fn get_all_children_number(&self, path: &str) -> i32;
    /// See [`zk_client::Client::whoami`].
    fn whoami(&self) -> Vec<ClientInfo>;
    /// See [`zk_client::Client::get_config`].
    fn get_config(&self) -> (Data, Stat);
    /// See [`zk_client::Client::reconfig`].
    fn reconfig(&self, joining: Option<&str>, leaving: Option<&str>, new_members: Option<&str>, from_config: i64) -> (Data, Stat);
    /// See [`zk_client::Client::add_watch`].
    fn add_watch(&self, path: &str, mode: AddWatchMode) -> WatchStream;
    /// See [`zk_client::Client::remove_watches`].
    fn remove_watches(&self, path: &str, kind: WatcherType) -> ();
    /// See [`zk_client::Client::check_watches`].
    fn check_watches(&self, path: &str, kind: WatcherType) -> ();
    /// See [`zk_client::Client::add_auth`].
    fn add_auth(&self, scheme: &str, credentials: impl AsRef<[u8]>) -> ();
    /// See [`zk_client::Client::close`].
    fn close(&self) -> ();
    /// See [`zk_client::Client::wait_connected`].
    fn wait_connected(&self) -> ();
        }
    };
}
