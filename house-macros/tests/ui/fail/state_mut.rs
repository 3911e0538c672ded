struct Counter(u64);

#[house::closing_handler]
fn count(counter: &mut Counter) -> String {
    counter.0 += 1;
    counter.0.to_string()
}

fn main() {}
