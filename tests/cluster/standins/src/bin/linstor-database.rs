//! Stand-in for `/usr/share/linstor-server/bin/linstor-database` (see `linstor_standins::dbtool`).

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = linstor_standins::dbtool::ToolEnv::from_process();
    let code = linstor_standins::dbtool::run(&args, &env).await;
    std::process::exit(code);
}
