"""What a CNN learns on the digits: its first-layer filters, one image's activation maps, and
the training curves.

    python examples/digits_filters.py [OUT_DIR]   # about a second; writes to OUT_DIR (default .)
        digits_filters_init.png  the 32 first-layer 5x5 filters before training (random)
        digits_filters.png       the same filters after training: strokes, edges and blobs
        digits_activations.png   the 32 maps the first layer makes of one test digit
        digits_history.png       loss and accuracy per epoch, training and test

Two choices make the learned filters worth looking at. The 8x8 digits are enlarged to 16x16
(each pixel repeated, then a Gaussian blur from cconv.filters), so strokes are a few pixels
wide and a 5x5 filter can hold a piece of one. And the first layer starts from small weights:
from the usual He initialisation the 1,437 training images move the filters too little for
the random start to fade, and the picture would still look like noise (3x3 filters, as in
`cconv train`'s model, are too small to show much either).
"""
import os
import sys

import cconv
from cconv import callbacks, datasets, filters, optim, viz
from cconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D


def enlarge(x):
    """(N, 1, 8, 8) digits -> (N, 1, 16, 16): every pixel repeated 2x2, then blurred."""
    return filters.apply(x.repeat(2, axis=2).repeat(2, axis=3), filters.gaussian_blur(1.0))


def train(epochs=10, seed=0):
    """(model, history, test images, the first layer's weights before training)."""
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    x_train, x_test = enlarge(x_train), enlarge(x_test)
    model = cconv.Sequential([
        Conv2D(32, 5, padding="same", activation="relu"), MaxPool2D(2),
        Conv2D(32, 3, padding="same", activation="relu"), MaxPool2D(2),
        Flatten(), Dropout(0.3), Dense(10)], input_shape=(1, 16, 16), seed=seed)
    model[0].params["weight"] *= 0.05  # start small: the picture shows what was learned
    initial = model[0].params["weight"].copy()
    trainer = cconv.Trainer(model, optimizer=optim.Adam(lr=2e-3))
    history = trainer.fit(x_train, y_train, epochs=epochs, validation_data=(x_test, y_test),
                          seed=seed, verbose=0, augment=datasets.RandomShift(1, probability=0.5),
                          callbacks=[callbacks.LearningRateScheduler(optim.CosineLR(epochs))])
    return model, history, x_test, initial


def main(out_dir=".", epochs=10):
    model, history, x_test, initial = train(int(epochs))
    paths = [os.path.join(out_dir, f"digits_{name}.png")
             for name in ("filters_init", "filters", "activations", "history")]
    viz.plot_filters(initial, paths[0], title="32 filters 5x5 before training")
    viz.plot_filters(model[0], paths[1], title=f"32 filters 5x5 after {epochs} epochs")
    viz.plot_activations(model, x_test[0], path=paths[2])
    viz.plot_history(history, paths[3], val_label="test")
    print(f"test accuracy {history.history['val_accuracy'][-1]:.3f}")
    return paths


if __name__ == "__main__":
    print("wrote", ", ".join(main(*sys.argv[1:2])))
