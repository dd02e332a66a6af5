package demo;

import java.util.ArrayList;
import java.util.List;

public class Stack<T> {
    private final List<T> items = new ArrayList<>();

    public void push(T item) {
        items.add(item);
    }

    public T pop() {
        // remove the last item<CURSOR>
        return items.remove(items.size() - 1);
    }
}
