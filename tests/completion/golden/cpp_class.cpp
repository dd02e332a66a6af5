#include <string>
#include <vector>

namespace shapes {

class Polygon {
 public:
  explicit Polygon(std::vector<double> xs) : xs_(std::move(xs)) {}

  double perimeter() const {
    double sum = 0;
    for (double x : xs_) sum += x;
    return sum;
  }

  size_t sides() const { return <CURSOR> }

 private:
  std::vector<double> xs_;
};

}  // namespace shapes
