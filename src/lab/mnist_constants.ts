/**
 * MNIST's input normalisation, x = (pixel / 255 − MNIST_MEAN) / MNIST_STD (torchvision's values),
 * and the image size. No Node API here: the explorer page imports it too.
 */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const IMAGE_SIZE = 28 * 28;
