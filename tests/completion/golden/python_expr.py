def area(w, h):
    return w * <CURSOR>
