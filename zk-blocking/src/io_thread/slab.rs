//! A slab: the I/O thread's clients and connections by index (the index is
//! their mio token or waker's key), with free indexes reused.

pub(super) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    pub(super) fn new() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
    pub(super) fn insert(&mut self, v: T) -> usize {
        match self.free.pop() {
            Some(k) => {
                self.items[k] = Some(v);
                k
            }
            None => {
                self.items.push(Some(v));
                self.items.len() - 1
            }
        }
    }
    pub(super) fn next_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.items.len())
    }
    pub(super) fn get_mut(&mut self, k: usize) -> Option<&mut T> {
        self.items.get_mut(k).and_then(Option::as_mut)
    }
    pub(super) fn remove(&mut self, k: usize) -> Option<T> {
        let v = self.items.get_mut(k).and_then(Option::take);
        if v.is_some() {
            self.free.push(k);
        }
        v
    }
}
